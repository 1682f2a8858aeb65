/**
 * Reads the mount table of this process from /proc/self/mountinfo (format: proc(5), "/proc/pid/mountinfo"):
 *
 *   36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue
 *   id par dev root  point options    optional - type source     super options
 *
 * The kernel writes space, tab, newline and backslash in paths as octal escapes (\040 \011 \012 \134).
 */
import { basename, dirname, resolve } from "node:path";

/** One line of /proc/self/mountinfo, with paths decoded. */
export interface MountEntry {
  mountId: number;
  parentId: number;
  /** "major:minor" of the device. */
  device: string;
  /** The path inside the file system that forms the root of this mount (not always a path: "net:[...]"). */
  root: string;
  /** Where it is mounted, relative to this process's root. */
  mountPoint: string;
  /** Per-mount options, e.g. ["rw", "nosuid", "nodev"]. */
  mountOptions: string[];
  /** Propagation fields such as "shared:1" or "master:2". */
  optionalFields: string[];
  fsType: string;
  source: string;
  /** Per-superblock options, e.g. ["rw", "size=1024k", "mode=755", "noswap"]. */
  superOptions: string[];
}

const MOUNTINFO = "/proc/self/mountinfo";
const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Decodes the kernel's `\ooo` escapes; anything that is not a complete escape is kept as it is. */
export function decodeMountinfoPath(field: string): string {
  if (!field.includes("\\")) return field;
  // Escapes stand for bytes, and a path's other bytes are UTF-8, so decode at the byte level.
  const input = encoder.encode(field);
  const out = new Uint8Array(input.length);
  let n = 0;
  for (let i = 0; i < input.length; i++) {
    const value = input[i] === 0x5c ? octalByte(input, i + 1) : -1;
    if (value < 0) {
      out[n++] = input[i];
    } else {
      out[n++] = value;
      i += 3;
    }
  }
  return decoder.decode(out.subarray(0, n));
}

/** The byte written as three octal digits at `at`, or -1 when there are none there. */
function octalByte(bytes: Uint8Array, at: number): number {
  let value = 0;
  for (let i = at; i < at + 3; i++) {
    const digit = bytes[i] - 0x30;
    if (!(digit >= 0 && digit <= 7)) return -1;
    value = value * 8 + digit;
  }
  return value <= 0xff ? value : -1;
}

const NUMBER = /^\d+$/;
const DEVICE = /^\d+:\d+$/;

/** Parses one line; undefined when it does not have the mountinfo shape. */
function parseLine(line: string): MountEntry | undefined {
  const fields = line.split(" ");
  const separator = fields.indexOf("-", 6);
  // Exactly three fields follow the separator: type, source, super options.
  if (separator < 0 || fields.length !== separator + 4) return undefined;
  const [mountId, parentId, device, root, mountPoint, mountOptions] = fields;
  if (!NUMBER.test(mountId) || !NUMBER.test(parentId) || !DEVICE.test(device)) return undefined;
  if (!root || !mountPoint.startsWith("/") || !mountOptions) return undefined;
  const [fsType, source, superOptions] = fields.slice(separator + 1);
  // The source may be empty: mount(2) accepts "" and the kernel then prints nothing between the spaces.
  if (!fsType || !superOptions) return undefined;
  return {
    mountId: Number(mountId),
    parentId: Number(parentId),
    device,
    root: decodeMountinfoPath(root),
    mountPoint: decodeMountinfoPath(mountPoint),
    mountOptions: mountOptions.split(","),
    optionalFields: fields.slice(6, separator),
    fsType: decodeMountinfoPath(fsType),
    source: decodeMountinfoPath(source),
    superOptions: superOptions.split(","),
  };
}

/**
 * Parses mountinfo text. Lines that do not have the mountinfo shape are skipped, never thrown on: the
 * kernel's output is trusted, and one odd line must not make every mount check of the driver fail.
 */
export function parseMountinfo(text: string): MountEntry[] {
  const entries: MountEntry[] = [];
  for (const line of text.split("\n")) {
    const entry = parseLine(line);
    if (entry) entries.push(entry);
  }
  return entries;
}

/** The mounts of this process, read from /proc/self/mountinfo. */
export async function readMountinfo(): Promise<MountEntry[]> {
  return parseMountinfo(await Deno.readTextFile(MOUNTINFO));
}

/** Runs `find`; undefined when the path it looks at (or one of its parents) does not exist. */
async function ifExists<T>(find: () => Promise<T>): Promise<T | undefined> {
  try {
    return await find();
  } catch (err) {
    if (err instanceof Deno.errors.NotFound || err instanceof Deno.errors.NotADirectory) return undefined;
    throw err;
  }
}

/**
 * True when `path` itself is a mount point. Its parent directories are resolved with Deno.realPath, but
 * a symbolic link as the last name is not followed: a link to a mount point is not a mount point, which
 * keeps this answer the same as "would umount2(path, UMOUNT_NOFOLLOW) unmount something". A missing path
 * is not a mount point.
 */
export async function isMountPoint(path: string): Promise<boolean> {
  const absolute = resolve(path);
  const target = await ifExists(async () => {
    await Deno.lstat(absolute);
    if (absolute === "/") return absolute;
    const parent = await Deno.realPath(dirname(absolute));
    return parent === "/" ? `/${basename(absolute)}` : `${parent}/${basename(absolute)}`;
  });
  if (target === undefined) return false;
  return (await readMountinfo()).some((entry) => entry.mountPoint === target);
}

/**
 * The mounts strictly below `dir` (not `dir` itself), in mountinfo order (parents before children), with
 * `dir` resolved by Deno.realPath. Empty when `dir` does not exist.
 */
export async function mountsUnder(dir: string): Promise<MountEntry[]> {
  const root = await ifExists(() => Deno.realPath(dir));
  if (root === undefined) return [];
  const prefix = root === "/" ? "/" : `${root}/`;
  return (await readMountinfo()).filter((entry) =>
    entry.mountPoint !== root && entry.mountPoint.startsWith(prefix)
  );
}
