/**
 * Opening a volume's target directory by file descriptor. Below kubelet's pods directory every component
 * is opened with openat(2) and O_NOFOLLOW relative to the one before it, so a symbolic link planted at
 * any depth is refused rather than followed, and once opened the directory cannot be swapped: mounts,
 * unmounts and removals go through the descriptors, not through the path.
 *
 * Kubelet's path shape (pkg/volume/csi): `<kubelet root>/pods/<pod uid>/volumes/kubernetes.io~csi/<volume
 * name>/mount`. The kubelet root itself (a setting, `/var/lib/kubelet` by default, a link on some
 * distributions) is trusted and resolved normally.
 */
import { basename, dirname, resolve } from "node:path";
import { DriverError, GrpcStatus, internal, invalidArgument } from "../errors.ts";
import { SyscallError } from "./errno.ts";
import {
  AT_FDCWD,
  fdPath,
  O_DIRECTORY,
  O_NOFOLLOW,
  O_PATH,
  sysClose,
  sysMkdirat,
  sysOpenat,
} from "./libc.ts";
import type { Target } from "../volume/ports.ts";

/** Upstream creates missing target directories with this mode. */
const TARGET_DIR_MODE = 0o750;
const DIR_FLAGS = O_PATH | O_DIRECTORY;
const NOFOLLOW_DIR_FLAGS = O_PATH | O_DIRECTORY | O_NOFOLLOW;

/** The components of kubelet's CSI volume path below `pods/`; `*` is any one name. */
const KUBELET_SHAPE = ["*", "volumes", "kubernetes.io~csi", "*", "mount"];

/** A target directory held by its parent's descriptor and its name (see {@link Target}). */
export class TargetDir implements Target {
  readonly #held = new Set<number>();
  #closed = false;

  constructor(
    readonly path: string,
    readonly id: string,
    /** O_PATH descriptor of the parent directory. */
    readonly parentFd: number,
    readonly name: string,
  ) {}

  /** Keeps `fd` until close(). */
  hold(fd: number): number {
    this.#held.add(fd);
    return fd;
  }

  /** The descriptors held besides the parent's (volume roots). */
  held(): number[] {
    return [...this.#held];
  }

  /** Closes a held descriptor now. */
  release(fd: number): void {
    if (this.#held.delete(fd)) sysClose(fd);
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const fd of this.#held) sysClose(fd);
    this.#held.clear();
    sysClose(this.parentFd);
  }
}

/** Where targets may be: below kubelet's pods directory in kubelet's shape, or (standalone) anywhere. */
export interface TargetPolicy {
  /** kubelet's root directory; unset: any directory the user names (the one-shot `mount` command). */
  kubeletRootDir?: string;
}

/**
 * Opens `path` (clean and absolute) under `policy`; creates missing directories when `create`. Null when
 * it does not exist and `create` is false.
 */
export async function openTargetDir(
  path: string,
  create: boolean,
  policy: TargetPolicy,
): Promise<TargetDir | null> {
  const parentFd = policy.kubeletRootDir === undefined
    ? await openNamedParent(path, create)
    : openKubeletParent(path, create, resolve(policy.kubeletRootDir));
  if (parentFd === null) return null;
  try {
    const name = basename(path);
    const fd = openOrMake(parentFd, name, path, path, create);
    if (fd === null) {
      sysClose(parentFd);
      return null;
    }
    sysClose(fd);
    const parent = await Deno.stat(fdPath(parentFd));
    return new TargetDir(path, `${parent.dev}:${parent.ino}/${name}`, parentFd, name);
  } catch (err) {
    sysClose(parentFd);
    throw err;
  }
}

/** The parent of a kubelet-shaped `path`, every component below `<root>/pods` opened without following. */
function openKubeletParent(path: string, create: boolean, root: string): number | null {
  const pods = root === "/" ? "/pods" : `${root}/pods`;
  const parts = path.startsWith(`${pods}/`) ? path.slice(pods.length + 1).split("/") : [];
  const shaped = parts.length === KUBELET_SHAPE.length &&
    KUBELET_SHAPE.every((want, i) => want === "*" || parts[i] === want);
  if (!shaped) {
    throw invalidArgument(
      `target path ${path} is not a kubelet CSI volume path ` +
        `(${pods}/<pod uid>/volumes/kubernetes.io~csi/<volume>/mount): the driver mounts only there`,
    );
  }
  let fd: number;
  try {
    fd = sysOpenat(AT_FDCWD, pods, DIR_FLAGS);
  } catch (err) {
    if (!(err instanceof SyscallError && err.code === "ENOENT")) throw explainOpenError(err, path, pods);
    if (!create) return null;
    // kubelet makes its pods directory at start-up; before that (or in tests) a publish makes it.
    Deno.mkdirSync(pods, { recursive: true, mode: TARGET_DIR_MODE });
    fd = sysOpenat(AT_FDCWD, pods, DIR_FLAGS);
  }
  let at = pods;
  try {
    for (const part of parts.slice(0, -1)) {
      at = `${at}/${part}`;
      const next = openOrMake(fd, part, at, path, create);
      sysClose(fd);
      fd = -1;
      if (next === null) return null;
      fd = next;
    }
    return fd;
  } catch (err) {
    if (fd >= 0) sysClose(fd);
    throw err;
  }
}

/** The parent of a path the user named, resolved as given (creating it when `create`). */
async function openNamedParent(path: string, create: boolean): Promise<number | null> {
  const parent = dirname(path);
  if (create) await Deno.mkdir(parent, { recursive: true, mode: TARGET_DIR_MODE });
  try {
    return sysOpenat(AT_FDCWD, parent, DIR_FLAGS);
  } catch (err) {
    if (err instanceof SyscallError && err.code === "ENOENT") return null;
    throw explainOpenError(err, path, parent);
  }
}

/** openNoFollow, making the directory first when it is missing and `create` (a repeat publish makes none). */
function openOrMake(dirFd: number, name: string, at: string, path: string, create: boolean): number | null {
  const fd = openNoFollow(dirFd, name, at, path);
  if (fd !== null || !create) return fd;
  try {
    sysMkdirat(dirFd, name, TARGET_DIR_MODE, at);
  } catch (err) {
    // Made meanwhile by a concurrent publish: open what is there now.
    if (!(err instanceof SyscallError && err.code === "EEXIST")) throw explainOpenError(err, path, at);
  }
  return openNoFollow(dirFd, name, at, path);
}

/**
 * Opens directory `name` in `dirFd` without following a link; null when missing. `at` is its full path,
 * `path` the target path it leads to (for messages).
 */
export function openNoFollow(dirFd: number, name: string, at: string, path: string): number | null {
  try {
    return sysOpenat(dirFd, name, NOFOLLOW_DIR_FLAGS, at);
  } catch (err) {
    if (err instanceof SyscallError && err.code === "ENOENT") return null;
    if (err instanceof SyscallError && (err.code === "ENOTDIR" || err.code === "ELOOP")) {
      let isLink = false;
      try {
        isLink = Deno.lstatSync(`${fdPath(dirFd)}/${name}`).isSymlink;
      } catch { /* gone meanwhile: report what openat saw */ }
      const what = at === path ? `target path ${path}` : `${at} (on target path ${path})`;
      if (isLink) throw invalidArgument(`${what} is a symlink; the driver does not follow it`);
      throw invalidArgument(`${what} exists and is not a directory`);
    }
    throw explainOpenError(err, path, at);
  }
}

function explainOpenError(err: unknown, path: string, at: string): DriverError {
  if (!(err instanceof SyscallError)) return internal(`cannot open target path ${path}: ${err}`, err);
  if (err.code === "ENOENT") {
    return new DriverError(
      GrpcStatus.INTERNAL,
      `cannot open target path ${path}: ${at} does not exist (${err.syscall}(2) answered ENOENT)`,
      { cause: err },
    );
  }
  return new DriverError(
    GrpcStatus.INTERNAL,
    `cannot open target path ${path}: ${err.syscall}(2) on ${at} answered ${err.code}`,
    { cause: err },
  );
}
