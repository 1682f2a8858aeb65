/**
 * One tmpfs per volume, capped in size, nosuid, nodev, noexec (secrets are never executed), and noswap
 * where the kernel has it (Linux >= 6.4), so secret bytes neither fill the node's memory nor land on swap.
 *
 * Everything is done on file descriptors (target-dir.ts): the tmpfs is built detached with the new mount
 * API (fsopen, fsconfig, fsmount: Linux 5.2) and attached with move_mount(2) onto the very directory that
 * was opened and checked, so swapping the target or one of its parents for a link between the checks and
 * the mount cannot redirect it. Its root is handed out as `/proc/self/fd/<n>`, a path that names that
 * mount whatever happens to the target path. On kernels without the new API, mount(2) is called on the
 * target's `/proc/self/fd/<n>` path instead, which pins the directory the same way.
 */
import { DriverError, GrpcStatus, internal } from "../errors.ts";
import { type Logger, silentLogger } from "../log.ts";
import type { Mounter, Target } from "../volume/ports.ts";
import { ERRNO, explainMountError, explainUnmountError, SyscallError } from "./errno.ts";
import {
  assertNoNul,
  AT_REMOVEDIR,
  fdPath,
  FSCONFIG_CMD_CREATE,
  FSCONFIG_SET_FLAG,
  FSCONFIG_SET_STRING,
  hasNewMountApi,
  MNT_DETACH,
  MOUNT_ATTR_NODEV,
  MOUNT_ATTR_NOEXEC,
  MOUNT_ATTR_NOSUID,
  MS_NODEV,
  MS_NOEXEC,
  MS_NOSUID,
  sysClose,
  sysFsconfig,
  sysFsmount,
  sysFsopen,
  sysFstatfsType,
  sysMount,
  sysMoveMount,
  sysUmount2,
  sysUnlinkat,
  TMPFS_MAGIC,
  UMOUNT_NOFOLLOW,
} from "./libc.ts";
import { readMountinfo } from "./mountinfo.ts";
import { resolve } from "node:path";
import { openNoFollow, openTargetDir, TargetDir, type TargetPolicy } from "./target-dir.ts";

/**
 * Default size cap of one volume's tmpfs: 16 MiB. Upstream sets none, so each volume may grow to the
 * kernel default of half the node's RAM. Everything in a volume arrives in one provider response, which
 * is limited to 4 MiB by default (gRPC's receive limit), and Kubernetes Secrets are at most 1 MiB each.
 * During a rotation the atomic writer holds the old and the new payload side by side, and every file
 * takes at least one 4 KiB page; the writer accepts a payload only if it needs at most half the cap in
 * blocks, so 16 MiB fits a 4 MiB response of up to ~2000 files with its rotation. The cap costs nothing up
 * front: tmpfs pages are charged to the memory cgroup only once written.
 */
export const DEFAULT_TMPFS_SIZE_BYTES = 16 * 1024 * 1024;

/** Whether to mount with `noswap`: "auto" uses it when the kernel accepts it, "on" requires it. */
export type NoswapMode = "auto" | "on" | "off";

/** Options of TmpfsMounter. */
export interface TmpfsMounterOptions extends TargetPolicy {
  /** Size cap of each tmpfs in bytes; a positive integer (tmpfs reads size=0 as "unlimited"). */
  sizeBytes: number;
  /** Default "auto". */
  noswap?: NoswapMode;
  log?: Logger;
  /** The mount(2) wrapper; tests hand in one that fails on purpose. Given, it is used instead of fsopen. */
  mountSyscall?: typeof sysMount;
  /** "auto" (default): the new mount API where the kernel has it; "legacy": mount(2) always. */
  mountApi?: "auto" | "legacy";
}

const FLAGS = MS_NOSUID | MS_NODEV | MS_NOEXEC;
const ATTRS = MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC;
const NO_NOSWAP_WARNING =
  "this kernel does not support tmpfs noswap (Linux 6.4+): volumes are mounted without it";
const NO_MOUNT_API_WARNING =
  "this kernel or libc has no new mount API (Linux 5.2+, glibc 2.36+): mounting with mount(2) on the " +
  "target's descriptor path instead";

/** The mount(2) data string of a volume's tmpfs. */
export function tmpfsData(sizeBytes: number, noswap: boolean): string {
  return `size=${sizeBytes},mode=0755${noswap ? ",noswap" : ""}`;
}

/** umount2 answering EBUSY is retried this many times, this far apart, before it is an error. */
const BUSY_RETRIES = 5;
const BUSY_RETRY_MS = 20;

/** The mount id of what `fd` refers to (`mnt_id` in /proc/self/fdinfo, Linux 3.15). */
async function mountIdOf(fd: number): Promise<number> {
  const info = await Deno.readTextFile(`/proc/self/fdinfo/${fd}`);
  const match = /^mnt_id:\s*(\d+)$/m.exec(info);
  if (!match) throw internal(`/proc/self/fdinfo/${fd} has no mnt_id line`);
  return Number(match[1]);
}

/** "an ext4 file system (/dev/sda1)": what mount `id` is, for a refusal. */
async function describeMount(id: number): Promise<string> {
  const entry = (await readMountinfo()).find((e) => e.mountId === id);
  if (!entry) return "a file system that is not in /proc/self/mountinfo";
  const source = entry.source === "" ? "" : ` (source ${JSON.stringify(entry.source)})`;
  return `a ${entry.fsType} file system${source}`;
}

function asTargetDir(target: Target): TargetDir {
  if (!(target instanceof TargetDir)) throw new TypeError("the target was not opened by TmpfsMounter");
  return target;
}

/** Mounts and unmounts per-volume tmpfs file systems on targets it opened. */
export class TmpfsMounter implements Mounter {
  readonly #sizeBytes: number;
  readonly #noswap: NoswapMode;
  readonly #log: Logger;
  readonly #mount: typeof sysMount;
  readonly #policy: TargetPolicy;
  /** In "auto": false once the kernel has rejected noswap, so later mounts skip it (and warn no more). */
  #kernelHasNoswap = true;
  /** False once fsopen was missing or answered ENOSYS (or when told to use mount(2)). */
  #newApi: boolean;

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
    this.#policy = { kubeletRootDir: options.kubeletRootDir };
    this.#newApi = options.mountSyscall === undefined && options.mountApi !== "legacy";
  }

  async open(path: string, options: { create: boolean }): Promise<TargetDir | null> {
    // "" would mean the working directory, a NUL byte would cut the path short in C.
    if (path === "") throw new DriverError(GrpcStatus.INVALID_ARGUMENT, "the mount target path is empty");
    assertNoNul(path, "mount target path");
    return await openTargetDir(resolve(path), options.create, this.#policy);
  }

  close(target: Target): void {
    asTargetDir(target).close();
  }

  /** Mounts a fresh tmpfs on the opened directory; refuses a mount point. Returns the tmpfs root. */
  async mount(target: Target): Promise<string> {
    const t = asTargetDir(target);
    const dirFd = this.#openDir(t);
    try {
      if (await mountIdOf(dirFd) !== await mountIdOf(t.parentFd)) {
        throw new DriverError(
          GrpcStatus.FAILED_PRECONDITION,
          `cannot mount tmpfs on ${JSON.stringify(t.path)}: it is already a mount point; unmount it first`,
        );
      }
      if (this.#newApi && !hasNewMountApi()) this.#fallBack();
      if (this.#newApi) {
        const root = this.#tryNewApi(dirFd, t.path);
        if (root !== null) return fdPath(t.hold(root));
      }
      this.#mountLegacy(dirFd, t.path);
    } finally {
      sysClose(dirFd);
    }
    // mount(2) put the tmpfs on the directory itself; its root is what the name now leads to.
    const root = (await this.#ownRoot(t)) ?? (() => {
      throw internal(`mounted tmpfs on ${t.path}, but the path no longer leads to it`);
    })();
    return fdPath(t.hold(root));
  }

  async mounted(target: Target): Promise<string | null> {
    const t = asTargetDir(target);
    const root = await this.#ownRoot(t);
    return root === null ? null : fdPath(t.hold(root));
  }

  async verify(target: Target, root: string): Promise<void> {
    const [now, ours] = await Promise.all([
      Deno.stat(target.path).catch(() => null),
      Deno.stat(root),
    ]);
    if (now === null || now.dev !== ours.dev || now.ino !== ours.ino) {
      throw internal(
        `target path ${target.path} no longer leads to the tmpfs the driver mounted on it ` +
          "(a directory on the path was moved or replaced during the publish)",
      );
    }
  }

  async unmount(target: Target): Promise<void> {
    const t = asTargetDir(target);
    const held = t.held();
    if (held.length > 0) {
      // Roots this target mounted or found: detached by descriptor, wherever they are now.
      for (const fd of held) {
        try {
          sysUmount2(fdPath(fd), MNT_DETACH, t.path);
        } catch (err) {
          if (!(err instanceof SyscallError && err.code === "EINVAL")) {
            throw explainUnmountError(err as SyscallError);
          }
        } finally {
          t.release(fd);
        }
      }
      return;
    }
    const root = await this.#ownRoot(t);
    if (root === null) return;
    sysClose(root); // an open descriptor would keep the mount busy
    // Through the parent's descriptor, the last name not followed: the parent cannot be swapped meanwhile.
    const path = `${fdPath(t.parentFd)}/${t.name}`;
    for (let attempt = 1;; attempt++) {
      try {
        sysUmount2(path, UMOUNT_NOFOLLOW, t.path);
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

  remove(target: Target): Promise<void> {
    const t = asTargetDir(target);
    try {
      sysUnlinkat(t.parentFd, t.name, AT_REMOVEDIR, t.path);
    } catch (err) {
      if (err instanceof SyscallError && err.code === "ENOENT") return Promise.resolve();
      throw internal(`failed to remove target path ${t.path}: ${(err as Error).message}`, err);
    }
    return Promise.resolve();
  }

  /**
   * A descriptor of the driver's tmpfs root on `t`; null when nothing is mounted there. Throws
   * FAILED_PRECONDITION naming the file system when something other than a tmpfs is mounted.
   */
  async #ownRoot(t: TargetDir): Promise<number | null> {
    const top = openNoFollow(t.parentFd, t.name, t.path, t.path);
    if (top === null) return null;
    try {
      const id = await mountIdOf(top);
      if (id === await mountIdOf(t.parentFd)) {
        sysClose(top);
        return null;
      }
      if (sysFstatfsType(top, t.path) === TMPFS_MAGIC) return top;
      throw new DriverError(
        GrpcStatus.FAILED_PRECONDITION,
        `target path ${t.path} has ${await describeMount(id)} mounted on it, which this driver did not ` +
          "mount; the driver neither mounts over it nor unmounts it",
      );
    } catch (err) {
      sysClose(top);
      throw err;
    }
  }

  #openDir(t: TargetDir): number {
    const fd = openNoFollow(t.parentFd, t.name, t.path, t.path);
    if (fd === null) {
      throw explainMountError(new SyscallError("openat", t.path, ERRNO.ENOENT), { data: "" });
    }
    return fd;
  }

  #fallBack(): void {
    this.#newApi = false;
    this.#log.warn(NO_MOUNT_API_WARNING, { kernel: Deno.osRelease() });
  }

  /** fsopen → fsconfig → fsmount → move_mount onto `dirFd`; the mount's descriptor, or null on ENOSYS. */
  #tryNewApi(dirFd: number, path: string): number | null {
    const withNoswap = this.#noswap === "on" || (this.#noswap === "auto" && this.#kernelHasNoswap);
    let data = tmpfsData(this.#sizeBytes, withNoswap);
    let fs: number;
    try {
      fs = sysFsopen("tmpfs", path);
    } catch (err) {
      if (err instanceof SyscallError && err.code === "ENOSYS") {
        this.#fallBack();
        return null;
      }
      throw err instanceof SyscallError ? explainMountError(err, { data }) : err;
    }
    let mnt: number;
    try {
      // The source mountinfo shows, as mount(2) of upstream's driver and of the fallback write it.
      sysFsconfig(fs, FSCONFIG_SET_STRING, "source", "tmpfs", path);
      sysFsconfig(fs, FSCONFIG_SET_STRING, "size", String(this.#sizeBytes), path);
      sysFsconfig(fs, FSCONFIG_SET_STRING, "mode", "0755", path);
      if (withNoswap) {
        try {
          sysFsconfig(fs, FSCONFIG_SET_FLAG, "noswap", null, path);
        } catch (err) {
          if (!(this.#noswap === "auto" && err instanceof SyscallError && err.code === "EINVAL")) throw err;
          // Kernels before 6.4 do not know the option.
          this.#kernelHasNoswap = false;
          data = tmpfsData(this.#sizeBytes, false);
          this.#log.warn(NO_NOSWAP_WARNING, { kernel: Deno.osRelease() });
        }
      }
      sysFsconfig(fs, FSCONFIG_CMD_CREATE, null, null, path);
      mnt = sysFsmount(fs, ATTRS, path);
    } catch (err) {
      throw err instanceof SyscallError ? explainMountError(err, { data }) : err;
    } finally {
      sysClose(fs);
    }
    try {
      sysMoveMount(mnt, dirFd, path);
    } catch (err) {
      sysClose(mnt);
      throw err instanceof SyscallError ? explainMountError(err, { data }) : err;
    }
    return mnt;
  }

  /** mount(2) on the directory's descriptor path, retried without noswap where the kernel lacks it. */
  #mountLegacy(dirFd: number, path: string): void {
    const withNoswap = this.#noswap === "on" || (this.#noswap === "auto" && this.#kernelHasNoswap);
    try {
      this.#mountOnce(dirFd, path, withNoswap);
    } catch (err) {
      if (!(this.#noswap === "auto" && withNoswap && isEinval(err))) throw err;
      // Kernels before 6.4 reject the unknown option with EINVAL; if the retry works, that was the cause.
      this.#mountOnce(dirFd, path, false);
      this.#kernelHasNoswap = false;
      this.#log.warn(NO_NOSWAP_WARNING, { kernel: Deno.osRelease() });
    }
  }

  #mountOnce(dirFd: number, path: string, noswap: boolean): void {
    const data = tmpfsData(this.#sizeBytes, noswap);
    try {
      this.#mount("tmpfs", fdPath(dirFd), "tmpfs", FLAGS, data, path);
    } catch (err) {
      throw err instanceof SyscallError ? explainMountError(err, { data }) : err;
    }
  }
}

function isEinval(err: unknown): boolean {
  return err instanceof DriverError && err.cause instanceof SyscallError && err.cause.code === "EINVAL";
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
