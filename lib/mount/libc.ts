/**
 * The libc symbols the driver calls through Deno FFI, declared once, and typed wrappers that throw a
 * SyscallError carrying errno. libc is opened on first use, so importing this module costs nothing (and
 * needs no --allow-ffi until a call is made).
 *
 * Every symbol is called synchronously (no `nonblocking`): errno is thread-local, so it must be read on
 * the thread that made the call, right after it, before anything else can overwrite it.
 */
import { DriverError, GrpcStatus } from "../errors.ts";
import { SyscallError } from "./errno.ts";

const symbols = {
  mount: {
    parameters: [
      "buffer", // const char *source
      "buffer", // const char *target
      "buffer", // const char *filesystemtype
      "usize", // unsigned long mountflags
      "buffer", // const void *data
    ],
    result: "i32", // int: 0, or -1 with errno set
  },

  umount2: {
    parameters: [
      "buffer", // const char *target
      "i32", // int flags
    ],
    result: "i32", // int: 0, or -1 with errno set
  },

  openat: {
    parameters: [
      "i32", // int dirfd
      "buffer", // const char *pathname
      "i32", // int flags
      "u32", // mode_t mode
    ],
    result: "i32", // int: a new file descriptor, or -1 with errno set
  },

  mkdirat: {
    parameters: [
      "i32", // int dirfd
      "buffer", // const char *pathname
      "u32", // mode_t mode
    ],
    result: "i32", // int: 0, or -1 with errno set
  },

  unlinkat: {
    parameters: [
      "i32", // int dirfd
      "buffer", // const char *pathname
      "i32", // int flags
    ],
    result: "i32", // int: 0, or -1 with errno set
  },

  fchownat: {
    parameters: [
      "i32", // int dirfd
      "buffer", // const char *pathname
      "u32", // uid_t owner: (uid_t)-1 keeps it
      "u32", // gid_t group
      "i32", // int flags
    ],
    result: "i32", // int: 0, or -1 with errno set
  },

  close: {
    parameters: [
      "i32", // int fd
    ],
    result: "i32", // int: 0, or -1 with errno set
  },

  fstatfs: {
    parameters: [
      "i32", // int fd
      "buffer", // struct statfs *buf
    ],
    result: "i32", // int: 0, or -1 with errno set
  },

  // The new mount API (Linux 5.2, glibc 2.36): optional, so that an older libc still loads.
  fsopen: {
    parameters: [
      "buffer", // const char *fs_name
      "u32", // unsigned int flags
    ],
    result: "i32", // int: a file system context fd, or -1 with errno set
    optional: true,
  },

  fsconfig: {
    parameters: [
      "i32", // int fd
      "u32", // unsigned int cmd
      "buffer", // const char *key
      "buffer", // const void *value
      "i32", // int aux
    ],
    result: "i32", // int: 0, or -1 with errno set
    optional: true,
  },

  fsmount: {
    parameters: [
      "i32", // int fd
      "u32", // unsigned int flags
      "u32", // unsigned int attr_flags
    ],
    result: "i32", // int: a detached mount fd, or -1 with errno set
    optional: true,
  },

  move_mount: {
    parameters: [
      "i32", // int from_dirfd
      "buffer", // const char *from_path
      "i32", // int to_dirfd
      "buffer", // const char *to_path
      "u32", // unsigned int flags
    ],
    result: "i32", // int: 0, or -1 with errno set
    optional: true,
  },

  alarm: {
    parameters: [
      "u32", // unsigned int seconds: 0 cancels
    ],
    result: "u32", // unsigned int: seconds left of the previous alarm
  },

  __errno_location: {
    parameters: [],
    result: "pointer", // int *: the calling thread's errno
  },
} as const satisfies Deno.ForeignLibraryInterface;

/** mount(2) flag: ignore set-user-ID and set-group-ID bits. */
export const MS_NOSUID = 0x2n;
/** mount(2) flag: do not interpret device special files. */
export const MS_NODEV = 0x4n;
/** mount(2) flag: do not allow programs to be executed. */
export const MS_NOEXEC = 0x8n;
/** umount2(2) flag: lazy unmount, detach now and clean up when no longer busy. */
export const MNT_DETACH = 0x2;
/** umount2(2) flag: do not dereference the target if it is a symbolic link. */
export const UMOUNT_NOFOLLOW = 0x8;

/** openat(2) flags; O_DIRECTORY and O_NOFOLLOW differ between x86_64 and arm64. */
const ARM64 = Deno.build.arch === "aarch64";
export const O_PATH = 0o10000000;
export const O_CLOEXEC = 0o2000000;
export const O_DIRECTORY = ARM64 ? 0o40000 : 0o200000;
export const O_NOFOLLOW = ARM64 ? 0o100000 : 0o400000;
/** The dirfd that makes *at(2) calls resolve relative paths from the working directory. */
export const AT_FDCWD = -100;
/** unlinkat(2) flag: remove a directory (rmdir), never following a link. */
export const AT_REMOVEDIR = 0x200;
/** fchownat(2) flag: change a symbolic link itself, never what it points to. */
export const AT_SYMLINK_NOFOLLOW = 0x100;
/** statfs f_type of tmpfs (linux/magic.h). */
export const TMPFS_MAGIC = 0x01021994;

/** fsopen(2) flag: close the context fd on exec. */
export const FSOPEN_CLOEXEC = 0x1;
/** fsconfig(2) commands. */
export const FSCONFIG_SET_FLAG = 0;
export const FSCONFIG_SET_STRING = 1;
export const FSCONFIG_CMD_CREATE = 6;
/** fsmount(2) flag: close the mount fd on exec. */
export const FSMOUNT_CLOEXEC = 0x1;
/** fsmount(2) mount attributes. */
export const MOUNT_ATTR_NOSUID = 0x2;
export const MOUNT_ATTR_NODEV = 0x4;
export const MOUNT_ATTR_NOEXEC = 0x8;
/** move_mount(2) flags: the source / destination is the fd itself (empty path). */
export const MOVE_MOUNT_F_EMPTY_PATH = 0x4;
export const MOVE_MOUNT_T_EMPTY_PATH = 0x40;

let lib: Deno.DynamicLibrary<typeof symbols>["symbols"] | undefined;

function libc(): Deno.DynamicLibrary<typeof symbols>["symbols"] {
  if (!lib) {
    try {
      lib = Deno.dlopen("libc.so.6", symbols).symbols;
    } catch (err) {
      throw new DriverError(
        GrpcStatus.INTERNAL,
        "cannot load libc.so.6 for mount(2): the driver needs glibc and --allow-ffi",
        { cause: err },
      );
    }
  }
  return lib;
}

const encoder = new TextEncoder();

/** Throws INVALID_ARGUMENT when `value` holds a NUL byte, which would silently cut it short in C. */
export function assertNoNul(value: string, what: string): void {
  if (value.includes("\0")) {
    throw new DriverError(
      GrpcStatus.INVALID_ARGUMENT,
      `the ${what} ${JSON.stringify(value)} contains a NUL byte`,
    );
  }
}

/** A NUL-terminated copy of `value`. */
function cString(value: string, what: string): Uint8Array<ArrayBuffer> {
  assertNoNul(value, what);
  return encoder.encode(value + "\0");
}

function errno(): number {
  const location = libc().__errno_location();
  return location ? new Deno.UnsafePointerView(location).getInt32() : 0;
}

/** mount(2). Throws SyscallError (syscall "mount", path `shown`) when the kernel refuses. */
export function sysMount(
  source: string,
  target: string,
  fstype: string,
  flags: bigint,
  data: string,
  shown = target,
): void {
  const args = [
    cString(source, "mount source"),
    cString(target, "mount target"),
    cString(fstype, "file system type"),
    flags,
    cString(data, "mount options"),
  ] as const;
  if (libc().mount(...args) !== 0) throw new SyscallError("mount", shown, errno());
}

/** openat(2): a new descriptor of `path` relative to `dirfd`. Throws SyscallError ("openat", `shown`). */
export function sysOpenat(dirfd: number, path: string, flags: number, shown = path): number {
  const fd = libc().openat(dirfd, cString(path, "path"), flags | O_CLOEXEC, 0);
  if (fd < 0) throw new SyscallError("openat", shown, errno());
  return fd;
}

/** mkdirat(2). Throws SyscallError ("mkdirat", `shown`). */
export function sysMkdirat(dirfd: number, name: string, mode: number, shown = name): void {
  if (libc().mkdirat(dirfd, cString(name, "directory name"), mode) !== 0) {
    throw new SyscallError("mkdirat", shown, errno());
  }
}

/** unlinkat(2). Throws SyscallError ("unlinkat", `shown`). */
export function sysUnlinkat(dirfd: number, name: string, flags: number, shown = name): void {
  if (libc().unlinkat(dirfd, cString(name, "name"), flags) !== 0) {
    throw new SyscallError("unlinkat", shown, errno());
  }
}

/**
 * fchownat(2) with AT_SYMLINK_NOFOLLOW: gives `path` (relative to `dirfd`) the group `gid`, keeping its
 * owner; a symbolic link itself is changed, never what it points to. Throws SyscallError ("fchownat").
 */
export function sysChgrpNoFollow(dirfd: number, path: string, gid: number, shown = path): void {
  if (libc().fchownat(dirfd, cString(path, "path"), 0xffffffff, gid, AT_SYMLINK_NOFOLLOW) !== 0) {
    throw new SyscallError("fchownat", shown, errno());
  }
}

/** close(2); a failure to close a descriptor this process opened is a bug, not a condition to handle. */
export function sysClose(fd: number): void {
  libc().close(fd);
}

/** The f_type of the file system `fd` lives on (fstatfs(2); f_type is the first word of struct statfs). */
export function sysFstatfsType(fd: number, shown: string): number {
  const buf = new BigInt64Array(16); // struct statfs is 120 bytes on 64-bit Linux
  if (libc().fstatfs(fd, buf) !== 0) throw new SyscallError("fstatfs", shown, errno());
  return Number(buf[0]);
}

/** True when libc has the new mount API (fsopen, fsconfig, fsmount, move_mount: glibc 2.36). */
export function hasNewMountApi(): boolean {
  const l = libc();
  return l.fsopen !== null && l.fsconfig !== null && l.fsmount !== null && l.move_mount !== null;
}

/** fsopen(2) with FSOPEN_CLOEXEC. Throws SyscallError ("fsopen"); ENOSYS on kernels before 5.2. */
export function sysFsopen(fsName: string, shown: string): number {
  const fd = libc().fsopen!(cString(fsName, "file system type"), FSOPEN_CLOEXEC);
  if (fd < 0) throw new SyscallError("fsopen", shown, errno());
  return fd;
}

/** fsconfig(2) setting `key` (to `value`, or as a flag when value is null), or running `cmd` alone. */
export function sysFsconfig(
  fd: number,
  cmd: number,
  key: string | null,
  value: string | null,
  shown: string,
) {
  const keyBuf = key === null ? null : cString(key, "file system option");
  const valueBuf = value === null ? null : cString(value, "file system option value");
  if (libc().fsconfig!(fd, cmd, keyBuf, valueBuf, 0) !== 0) {
    throw new SyscallError("fsconfig", shown, errno(), key ?? undefined);
  }
}

/** fsmount(2) with FSMOUNT_CLOEXEC: a detached mount of a created context. */
export function sysFsmount(fd: number, attrs: number, shown: string): number {
  const mnt = libc().fsmount!(fd, FSMOUNT_CLOEXEC, attrs);
  if (mnt < 0) throw new SyscallError("fsmount", shown, errno());
  return mnt;
}

/** move_mount(2) from the mount `fromFd` onto the directory `toFd` (both as empty paths). */
export function sysMoveMount(fromFd: number, toFd: number, shown: string): void {
  const empty = cString("", "path");
  const flags = MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH;
  if (libc().move_mount!(fromFd, empty, toFd, empty, flags) !== 0) {
    throw new SyscallError("move_mount", shown, errno());
  }
}

/** The path that names what descriptor `fd` refers to, whatever happens to the path it was opened by. */
export function fdPath(fd: number): string {
  return `/proc/self/fd/${fd}`;
}

/** umount2(2). Throws SyscallError (syscall "umount2", path `shown`) when the kernel refuses. */
export function sysUmount2(target: string, flags: number, shown = target): void {
  const path = cString(target, "unmount target");
  if (libc().umount2(path, flags) !== 0) throw new SyscallError("umount2", shown, errno());
}

/**
 * alarm(2): SIGALRM in `seconds` (0 cancels), replacing any pending alarm. Nothing handles SIGALRM, so it
 * terminates the process (lib/watchdog.ts).
 */
export function sysAlarm(seconds: number): void {
  libc().alarm(seconds);
}
