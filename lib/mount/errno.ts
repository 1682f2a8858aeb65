/**
 * Linux errno values, the error a failed syscall throws, and the sentences that explain mount(2) and
 * umount2(2) failures to kubelet and to people.
 *
 * gRPC codes: kubelet treats CANCELLED, DEADLINE_EXCEEDED, UNAVAILABLE, RESOURCE_EXHAUSTED and ABORTED
 * from NodePublishVolume as "maybe still in progress" (the volume becomes uncertain) and every other code
 * as final: nothing was mounted. A failed mount(2) certainly mounted nothing, so every syscall failure
 * maps to a final code. INTERNAL is used for almost all of them: the fault is in the node or the driver's
 * deployment, not in the request. PERMISSION_DENIED would be wrong for EPERM: in gRPC it says the *caller*
 * (kubelet) lacks permission, which sends operators to RBAC; here the driver itself lacks CAP_SYS_ADMIN.
 * FAILED_PRECONDITION is used where the state of the target path must change first (busy, already mounted).
 */
import { DriverError, GrpcStatus } from "../errors.ts";

/**
 * errno numbers of the asm-generic table, which x86_64, arm64, riscv64, s390x and ppc64 use (mips, sparc,
 * alpha and parisc differ; the driver does not run there).
 */
export const ERRNO = {
  EPERM: 1,
  ENOENT: 2,
  EINTR: 4,
  EIO: 5,
  ENXIO: 6,
  E2BIG: 7,
  EBADF: 9,
  EAGAIN: 11,
  ENOMEM: 12,
  EACCES: 13,
  EFAULT: 14,
  ENOTBLK: 15,
  EBUSY: 16,
  EEXIST: 17,
  EXDEV: 18,
  ENODEV: 19,
  ENOTDIR: 20,
  EISDIR: 21,
  EINVAL: 22,
  ENFILE: 23,
  EMFILE: 24,
  EFBIG: 27,
  ENOSPC: 28,
  EROFS: 30,
  EMLINK: 31,
  ERANGE: 34,
  ENAMETOOLONG: 36,
  ENOSYS: 38,
  ENOTEMPTY: 39,
  ELOOP: 40,
  EOVERFLOW: 75,
  EOPNOTSUPP: 95,
  ESTALE: 116,
  EDQUOT: 122,
} as const;

/** A symbolic errno name such as "EPERM". */
export type ErrnoName = keyof typeof ERRNO;

const NAMES = new Map<number, ErrnoName>(
  Object.entries(ERRNO).map(([name, value]) => [value, name as ErrnoName]),
);

/** The symbolic name of `errno` ("EPERM"), or "errno <n>" for a value outside the table. */
export function errnoName(errno: number): string {
  return NAMES.get(errno) ?? `errno ${errno}`;
}

/** The libc calls whose failures this module explains. */
export type Syscall =
  | "mount"
  | "umount2"
  | "openat"
  | "mkdirat"
  | "unlinkat"
  | "fchownat"
  | "fstatfs"
  | "fsopen"
  | "fsconfig"
  | "fsmount"
  | "move_mount";

/** A libc call that returned -1, with the errno it left behind. */
export class SyscallError extends Error {
  /** Symbolic errno name, e.g. "EPERM". */
  readonly code: string;

  constructor(
    readonly syscall: Syscall,
    readonly path: string,
    readonly errno: number,
    /** The option an fsconfig(2) call set, if any. */
    readonly option?: string,
  ) {
    const code = errnoName(errno);
    super(`${syscall}(${JSON.stringify(path)}${option ? `, ${option}` : ""}) failed: ${code}`);
    this.name = "SyscallError";
    this.code = code;
  }
}

/** Details a sentence about a failed tmpfs mount may name. */
export interface MountAttempt {
  /** The mount(2) data string, e.g. "size=16777216,mode=0755,noswap". */
  data: string;
}

/** Turns a failed mount(2) of tmpfs into a DriverError whose message says what happened and to what. */
export function explainMountError(err: SyscallError, attempt: MountAttempt): DriverError {
  const target = JSON.stringify(err.path);
  const say = (sentence: string, code: GrpcStatus = GrpcStatus.INTERNAL) =>
    new DriverError(code, `${sentence} (${err.syscall}(2) answered ${err.code})`, { cause: err });
  switch (err.code) {
    case "EPERM":
    case "EACCES":
      return say(
        `cannot mount tmpfs on ${target}: mounting tmpfs needs CAP_SYS_ADMIN: run as root (or privileged)`,
      );
    case "ENOENT":
      return say(`cannot mount tmpfs on ${target}: the target directory does not exist`);
    case "ENOTDIR":
      return say(`cannot mount tmpfs on ${target}: it or one of its parents is not a directory`);
    case "EBUSY":
      return say(
        `cannot mount tmpfs on ${target}: the target is busy (something is already mounted there)`,
        GrpcStatus.FAILED_PRECONDITION,
      );
    case "EINVAL":
      return say(
        `cannot mount tmpfs on ${target}: the kernel rejected the options ${JSON.stringify(attempt.data)}` +
          " or the target's state (noswap needs Linux 6.4 or newer; size must be a byte count)",
      );
    case "ENOMEM":
      return say(`cannot mount tmpfs on ${target}: the kernel is out of memory`);
    case "ELOOP":
      return say(`cannot mount tmpfs on ${target}: too many symbolic links while resolving the path`);
    case "ENAMETOOLONG":
      return say(
        `cannot mount tmpfs on ${target}: the path is too long (Linux allows 4095 bytes, 255 per name)`,
      );
    case "ENOSPC":
      return say(
        `cannot mount tmpfs on ${target}: the mount namespace has reached its mount limit (sysctl fs.mount-max)`,
      );
    case "ENODEV":
      return say(`cannot mount tmpfs on ${target}: this kernel has no tmpfs support`);
    default:
      return say(`cannot mount tmpfs on ${target}: the kernel refused`);
  }
}

/** Turns a failed umount2(2) into a DriverError whose message says what happened and to what. */
export function explainUnmountError(err: SyscallError): DriverError {
  const target = JSON.stringify(err.path);
  const say = (sentence: string, code: GrpcStatus = GrpcStatus.INTERNAL) =>
    new DriverError(code, `${sentence} (umount2(2) answered ${err.code})`, { cause: err });
  switch (err.code) {
    case "EPERM":
    case "EACCES":
      return say(`cannot unmount ${target}: unmounting needs CAP_SYS_ADMIN: run as root (or privileged)`);
    case "EBUSY":
      return say(
        `cannot unmount ${target}: it is busy (a process has a file or its working directory there, ` +
          "or another mount sits below it)",
        GrpcStatus.FAILED_PRECONDITION,
      );
    case "EINVAL":
      return say(
        `cannot unmount ${target}: it is not a mount point, is a symbolic link (never followed), ` +
          "or its mount is locked by a user namespace",
      );
    case "ENOENT":
      return say(`cannot unmount ${target}: the path does not exist`);
    case "ENOTDIR":
      return say(`cannot unmount ${target}: one of its parents is not a directory`);
    case "ENOMEM":
      return say(`cannot unmount ${target}: the kernel is out of memory`);
    case "ELOOP":
      return say(`cannot unmount ${target}: too many symbolic links while resolving the path`);
    case "ENAMETOOLONG":
      return say(`cannot unmount ${target}: the path is too long (Linux allows 4095 bytes, 255 per name)`);
    default:
      return say(`cannot unmount ${target}: the kernel refused`);
  }
}
