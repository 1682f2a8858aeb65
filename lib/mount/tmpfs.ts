/**
 * One tmpfs per volume, mounted with mount(2) through FFI: capped in size, nosuid, nodev, and noswap where
 * the kernel has it (Linux >= 6.4), so secret bytes neither fill the node's memory nor land on swap.
 */
import { DriverError, GrpcStatus } from "../errors.ts";
import { type Logger, silentLogger } from "../log.ts";
import type { Mounter } from "../volume/ports.ts";
import { explainMountError, explainUnmountError, SyscallError } from "./errno.ts";
import { assertNoNul, MS_NODEV, MS_NOSUID, sysMount, sysUmount2, UMOUNT_NOFOLLOW } from "./libc.ts";
import { dirname, resolve } from "node:path";

/**
 * Default size cap of one volume's tmpfs: 16 MiB. Upstream sets none, so each volume may grow to the
 * kernel default of half the node's RAM. Everything in a volume arrives in one provider response, which
 * is limited to 4 MiB by default (gRPC's receive limit), and Kubernetes Secrets are at most 1 MiB each.
 * During a rotation the atomic writer holds the old and the new payload side by side (2 x 4 MiB), and
 * every file takes at least one 4 KiB page, so 8 MiB would be too tight; 16 MiB leaves room for that and
 * for ~2000 small files. The cap costs nothing up front: tmpfs pages are charged to the memory cgroup only
 * once written.
 */
export const DEFAULT_TMPFS_SIZE_BYTES = 16 * 1024 * 1024;

/** Whether to mount with `noswap`: "auto" uses it when the kernel accepts it, "on" requires it. */
export type NoswapMode = "auto" | "on" | "off";

/** Options of TmpfsMounter. */
export interface TmpfsMounterOptions {
  /** Size cap of each tmpfs in bytes; a positive integer (tmpfs reads size=0 as "unlimited"). */
  sizeBytes: number;
  /** Default "auto". */
  noswap?: NoswapMode;
  log?: Logger;
  /** The mount(2) wrapper; tests hand in one that fails on purpose. Default sysMount. */
  mountSyscall?: typeof sysMount;
}

const FLAGS = MS_NOSUID | MS_NODEV;
const NO_NOSWAP_WARNING =
  "this kernel does not support tmpfs noswap (Linux 6.4+): volumes are mounted without it";

/** The mount(2) data string of a volume's tmpfs. */
export function tmpfsData(sizeBytes: number, noswap: boolean): string {
  return `size=${sizeBytes},mode=0755${noswap ? ",noswap" : ""}`;
}

/** umount2 answering EBUSY is retried this many times, this far apart, before it is an error. */
const BUSY_RETRIES = 5;
const BUSY_RETRY_MS = 20;

/** Mounts and unmounts per-volume tmpfs file systems. */
export class TmpfsMounter implements Mounter {
  readonly #sizeBytes: number;
  readonly #noswap: NoswapMode;
  readonly #log: Logger;
  readonly #mount: typeof sysMount;
  /** In "auto": false once the kernel has rejected noswap, so later mounts skip it (and warn no more). */
  #kernelHasNoswap = true;

  constructor(options: TmpfsMounterOptions) {
    if (!Number.isSafeInteger(options.sizeBytes) || options.sizeBytes <= 0) {
      throw new RangeError(
        `the tmpfs size must be a positive whole number of bytes, not ${options.sizeBytes}`,
      );
    }
    this.#sizeBytes = options.sizeBytes;
    this.#noswap = options.noswap ?? "auto";
    this.#log = options.log ?? silentLogger;
    this.#mount = options.mountSyscall ?? sysMount;
  }

  /** Mounts a fresh tmpfs on the existing directory `target`; refuses a mount point or a symbolic link. */
  async mount(target: string): Promise<void> {
    if (await this.isMountPoint(target)) {
      throw new DriverError(
        GrpcStatus.FAILED_PRECONDITION,
        `cannot mount tmpfs on ${JSON.stringify(target)}: it is already a mount point; unmount it first`,
      );
    }
    // umount2 never follows a link (UMOUNT_NOFOLLOW), so a mount made through one could not be removed.
    if ((await lstatIfExists(target))?.isSymlink) {
      throw new DriverError(
        GrpcStatus.FAILED_PRECONDITION,
        `cannot mount tmpfs on ${JSON.stringify(target)}: it is a symbolic link, which is never followed`,
      );
    }
    const withNoswap = this.#noswap === "on" || (this.#noswap === "auto" && this.#kernelHasNoswap);
    try {
      this.#mountOnce(target, withNoswap);
    } catch (err) {
      if (!(this.#noswap === "auto" && withNoswap && isEinval(err))) throw err;
      // Kernels before 6.4 reject the unknown option with EINVAL; if the retry works, that was the cause.
      this.#mountOnce(target, false);
      this.#kernelHasNoswap = false;
      this.#log.warn(NO_NOSWAP_WARNING, { kernel: Deno.osRelease() });
    }
  }

  #mountOnce(target: string, noswap: boolean): void {
    const data = tmpfsData(this.#sizeBytes, noswap);
    try {
      this.#mount("tmpfs", target, "tmpfs", FLAGS, data);
    } catch (err) {
      throw err instanceof SyscallError ? explainMountError(err, { data }) : err;
    }
  }

  /**
   * Unmounts `target` without following a symbolic link; success when it is missing or not a mount point.
   * umount2 is tried directly (its EINVAL means "not a mount point", ENOENT "missing"): checking first
   * would cost a mountinfo read per call, and that read grows with every mount on the node.
   */
  async unmount(target: string): Promise<void> {
    checkTarget(target);
    for (let attempt = 1;; attempt++) {
      try {
        sysUmount2(target, UMOUNT_NOFOLLOW);
        return;
      } catch (err) {
        if (!(err instanceof SyscallError)) throw err;
        if (err.code === "EINVAL" || err.code === "ENOENT") return;
        // A reader of the volume's files (the Secret sync) may hold one open for a moment.
        if (err.code !== "EBUSY" || attempt >= BUSY_RETRIES) throw explainUnmountError(err);
      }
      await new Promise((resolve) => setTimeout(resolve, BUSY_RETRY_MS));
    }
  }

  /**
   * True when `target` is a directory on another device than its parent: kubelet's IsLikelyNotMountPoint
   * test, which upstream uses. It costs two stat calls where reading mountinfo costs more with every mount
   * on the node; a bind mount from the parent's own file system goes unseen, which cannot hide a tmpfs
   * (each has a device of its own). A symbolic link is never a mount point here: it is not followed.
   */
  async isMountPoint(target: string): Promise<boolean> {
    checkTarget(target);
    const info = await lstatIfExists(target);
    if (!info || info.isSymlink) return false;
    const absolute = resolve(target);
    if (absolute === "/") return true;
    return info.dev !== (await Deno.stat(dirname(absolute))).dev;
  }
}

/** Refuses a target that path functions would misread: "" means the working directory, NUL cuts it short. */
function checkTarget(target: string): void {
  if (target === "") throw new DriverError(GrpcStatus.INVALID_ARGUMENT, "the mount target path is empty");
  assertNoNul(target, "mount target path");
}

function isEinval(err: unknown): boolean {
  return err instanceof DriverError && err.cause instanceof SyscallError && err.cause.code === "EINVAL";
}

async function lstatIfExists(path: string): Promise<Deno.FileInfo | undefined> {
  try {
    return await Deno.lstat(path);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return undefined;
    throw err;
  }
}

/** True when /proc/swaps lists at least one active swap area. */
export async function swapIsOn(): Promise<boolean> {
  let text: string;
  try {
    text = await Deno.readTextFile("/proc/swaps");
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return false; // kernel built without swap
    throw err;
  }
  // The first line is the header.
  return text.split("\n").slice(1).some((line) => line.trim() !== "");
}

let noswapProbe: Promise<boolean> | undefined;

/**
 * Whether this kernel accepts tmpfs `noswap`, found once by mounting and unmounting a tiny tmpfs in a
 * fresh temporary directory (needs CAP_SYS_ADMIN). The CLI uses it with swapIsOn to warn at start-up.
 */
export function noswapSupported(): Promise<boolean> {
  noswapProbe ??= probeNoswap().catch((err) => {
    noswapProbe = undefined; // a failed probe (EPERM, ...) is not an answer: ask again next time
    throw err;
  });
  return noswapProbe;
}

async function probeNoswap(): Promise<boolean> {
  const dir = await Deno.makeTempDir({ prefix: "secrets-store-csi-noswap-probe-" });
  const data = tmpfsData(4096, true);
  try {
    sysMount("tmpfs", dir, "tmpfs", FLAGS, data);
  } catch (err) {
    await Deno.remove(dir);
    if (err instanceof SyscallError && err.code === "EINVAL") return false;
    throw err instanceof SyscallError ? explainMountError(err, { data }) : err;
  }
  try {
    sysUmount2(dir, UMOUNT_NOFOLLOW);
  } catch (err) {
    throw err instanceof SyscallError ? explainUnmountError(err) : err;
  }
  await Deno.remove(dir);
  return true;
}
