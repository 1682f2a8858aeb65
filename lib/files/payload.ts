/**
 * Validation of the files a provider returns (MountResponse.files) before any of them touches disk.
 *
 * Upstream's rules (provider.proto `File`, kubelet's AtomicWriter `validatePath` and the driver's
 * `fileutil.Validate`): a path is relative, has no `..` element, does not start with `..`, has elements of
 * at most 255 bytes and is at most 4096 bytes long; it must already be in clean form; the mode is 0..0777.
 *
 * Beyond upstream: NUL bytes, ill-formed Unicode, duplicate paths, a path that is both a file and the
 * directory of another, the file count and the total size are rejected too. Non-clean paths (`a//b`,
 * `./a`, `a/.`, `a/`) are rejected rather than normalised: two spellings of one file would otherwise
 * slip past the duplicate check, and a provider that sends them is buggy and should hear about it.
 */
import { DriverError, GrpcStatus } from "../errors.ts";
import type { ProviderFile } from "../volume/ports.ts";

/** Caps on one payload; exceeded caps are validation errors, checked before anything is written. */
export interface PayloadLimits {
  /** Sum of all file contents, in bytes. */
  maxTotalBytes: number;
  /** Number of files. */
  maxFiles: number;
}

/**
 * Default file-count cap. Every file costs inodes and dentries on the volume's tmpfs and a symlink check
 * per rotation; real SecretProviderClasses name tens to hundreds of objects, so 10,000 leaves two orders
 * of magnitude of headroom while bounding the work a runaway provider can cause.
 */
export const DEFAULT_MAX_FILES = 10_000;

/** Linux NAME_MAX and PATH_MAX, the limits upstream applies. */
export const MAX_NAME_BYTES = 255;
export const MAX_PATH_BYTES = 4096;

/** Longest part of a hostile path quoted in an error message, in UTF-16 code units. */
const QUOTE_LIMIT = 100;

/**
 * A payload the driver refuses to write. The provider broke the contract, not the caller, so it
 * reaches kubelet as INTERNAL.
 */
export class PayloadError extends DriverError {
  constructor(message: string) {
    super(GrpcStatus.INTERNAL, message);
    this.name = "PayloadError";
  }
}

/** JSON-quotes `s`, cut to QUOTE_LIMIT code units so that a hostile name cannot flood the logs. */
export function quotePath(s: string): string {
  return s.length <= QUOTE_LIMIT ? JSON.stringify(s) : `${JSON.stringify(s.slice(0, QUOTE_LIMIT))}...`;
}

const encoder = new TextEncoder();

/** Returns why `path` is not acceptable, or undefined when it is. */
function pathProblem(path: string): string | undefined {
  if (path === "") return "is empty";
  if (path.includes("\0")) return "contains a NUL byte";
  if (!path.isWellFormed()) return "is not well-formed Unicode (it has a lone surrogate)";
  if (path.startsWith("/")) return "is absolute; paths must be relative to the volume";
  // UTF-8 is never shorter than UTF-16 code units, so a long string is rejected without encoding it.
  const bytes = path.length > MAX_PATH_BYTES ? path.length : encoder.encode(path).length;
  if (bytes > MAX_PATH_BYTES) return `is longer than ${MAX_PATH_BYTES} bytes`;
  for (const element of path.split("/")) {
    if (element === "") return 'has an empty element (a leading, doubled or trailing "/")';
    if (element === ".") return 'has a "." element; paths must be in clean form';
    if (element === "..") return 'has a ".." element, which would leave the volume';
    if (encoder.encode(element).length > MAX_NAME_BYTES) {
      return `has an element longer than ${MAX_NAME_BYTES} bytes`;
    }
  }
  if (path.startsWith("..")) {
    return 'starts with "..", which is reserved for the writer\'s own entries (..data and its timestamped directories)';
  }
  return undefined;
}

function isValidMode(mode: unknown): boolean {
  return typeof mode === "number" && Number.isInteger(mode) && mode >= 0 && mode <= 0o777;
}

/** The directories a relative `path` lives in, outermost first: "a/b/c" gives "a" and "a/b". */
export function* parentDirs(path: string): Generator<string> {
  for (let i = path.indexOf("/"); i !== -1; i = path.indexOf("/", i + 1)) yield path.slice(0, i);
}

/**
 * Throws a PayloadError naming the first offending file unless every file may be written below a target
 * directory as it is. Checks only the data: it touches no file system.
 */
export function validatePayload(files: ProviderFile[], limits: PayloadLimits): void {
  if (!Array.isArray(files)) throw new PayloadError("the provider payload is not a list of files");
  if (files.length > limits.maxFiles) {
    throw new PayloadError(
      `the provider returned ${files.length} files, more than the limit of ${limits.maxFiles}`,
    );
  }
  const paths = new Set<string>();
  let totalBytes = 0;
  for (const file of files) {
    const path: unknown = file?.path;
    if (typeof path !== "string") throw new PayloadError("a file in the provider payload has no path");
    const problem = pathProblem(path);
    if (problem) throw new PayloadError(`file path ${quotePath(path)} ${problem}`);
    if (!isValidMode(file.mode)) {
      const shown = typeof file.mode === "number" ? String(file.mode) : quotePath(String(file.mode));
      throw new PayloadError(
        `file ${quotePath(path)} has mode ${shown}; a mode must be an integer from 0 to 511 (0777)`,
      );
    }
    if (!(file.contents instanceof Uint8Array)) {
      throw new PayloadError(`file ${quotePath(path)} has contents that are not bytes`);
    }
    if (paths.has(path)) throw new PayloadError(`file path ${quotePath(path)} appears more than once`);
    paths.add(path);
    totalBytes += file.contents.byteLength;
  }
  if (totalBytes > limits.maxTotalBytes) {
    throw new PayloadError(
      `the provider payload holds ${totalBytes} bytes, more than the limit of ${limits.maxTotalBytes}`,
    );
  }
  for (const path of paths) {
    for (const dir of parentDirs(path)) {
      if (paths.has(dir)) {
        throw new PayloadError(
          `file path ${quotePath(dir)} is both a file and the directory of ${quotePath(path)}`,
        );
      }
    }
  }
}

/** The first element of a validated path: the name that appears in the target directory. */
export function topLevelName(path: string): string {
  const slash = path.indexOf("/");
  return slash === -1 ? path : path.slice(0, slash);
}
