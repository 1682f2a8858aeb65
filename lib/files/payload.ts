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
import { PayloadError } from "../errors.ts";
import type { ProviderFile } from "../volume/ports.ts";

/** Caps on one payload; exceeded caps are validation errors, checked before anything is written. */
export interface PayloadLimits {
  /** Sum of all file contents, in bytes. */
  maxTotalBytes: number;
  /** Number of files. */
  maxFiles: number;
  /**
   * The size cap of the volume's tmpfs. Given, a payload is accepted only when it needs at most half of
   * it in blocks (see {@link payloadBlocks}): a rotation holds the old and the new payload side by side.
   */
  volumeBytes?: number;
}

/** tmpfs allocates whole pages; 4 KiB on the architectures the driver runs on (x86_64, arm64 4K kernels). */
export const BLOCK_BYTES = 4096;
/** tmpfs keeps a symlink target of up to this many bytes in the inode, without a page (mm/shmem.c). */
const INLINE_SYMLINK_BYTES = 128;

/**
 * The tmpfs blocks one payload takes in the writer's layout (atomic-writer.ts), counted from above: every
 * file at least one block (its bytes rounded up), every directory one (the timestamped one included), and
 * every link whose target is too long to live in the inode one (a top-level name's `..data/<name>`).
 */
export function payloadBlocks(files: ProviderFile[]): number {
  let blocks = 1; // the timestamped directory
  const dirs = new Set<string>();
  const topLevel = new Set<string>();
  for (const file of files) {
    blocks += Math.max(1, Math.ceil(file.contents.byteLength / BLOCK_BYTES));
    for (const dir of parentDirs(file.path)) dirs.add(dir);
    topLevel.add(topLevelName(file.path));
  }
  blocks += dirs.size;
  for (const name of topLevel) {
    if (encoder.encode(name).length + "..data/".length > INLINE_SYMLINK_BYTES) blocks++;
  }
  return blocks;
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
  if (limits.volumeBytes !== undefined) checkFits(files, limits.volumeBytes);
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

/** Refuses a payload that, held twice (during a rotation), would not fit a tmpfs of `volumeBytes`. */
function checkFits(files: ProviderFile[], volumeBytes: number): void {
  const budget = Math.floor(volumeBytes / BLOCK_BYTES / 2);
  const blocks = payloadBlocks(files);
  if (blocks <= budget) return;
  const kib = (b: number) => `${b * (BLOCK_BYTES / 1024)} KiB`;
  throw new PayloadError(
    `the provider payload (${files.length} files) needs ${kib(blocks)} of the volume's tmpfs, as every ` +
      `file, directory and long link takes at least one ${kib(1)} block; at most ${kib(budget)} is ` +
      `accepted, half the volume's size cap of ${volumeBytes} bytes (--tmpfs-size), so that a rotation ` +
      "can hold the old and the new payload side by side",
  );
}

/** The first element of a validated path: the name that appears in the target directory. */
export function topLevelName(path: string): string {
  const slash = path.indexOf("/");
  return slash === -1 ? path : path.slice(0, slash);
}
