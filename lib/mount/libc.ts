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

/** mount(2). Throws SyscallError (syscall "mount", path `target`) when the kernel refuses. */
export function sysMount(source: string, target: string, fstype: string, flags: bigint, data: string): void {
  const args = [
    cString(source, "mount source"),
    cString(target, "mount target"),
    cString(fstype, "file system type"),
    flags,
    cString(data, "mount options"),
  ] as const;
  if (libc().mount(...args) !== 0) throw new SyscallError("mount", target, errno());
}

/** umount2(2). Throws SyscallError (syscall "umount2", path `target`) when the kernel refuses. */
export function sysUmount2(target: string, flags: number): void {
  const path = cString(target, "unmount target");
  if (libc().umount2(path, flags) !== 0) throw new SyscallError("umount2", target, errno());
}

/**
 * alarm(2): SIGALRM in `seconds` (0 cancels), replacing any pending alarm. Nothing handles SIGALRM, so it
 * terminates the process (lib/watchdog.ts).
 */
export function sysAlarm(seconds: number): void {
  libc().alarm(seconds);
}
