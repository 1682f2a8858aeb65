/**
 * Writes a provider payload into a volume the way kubelet's AtomicWriter does, so that pods see either the
 * old or the new set of files, never a mix:
 *
 * ```
 * <target>/..2024_05_01_12_00_00.abc123/   the files, written fresh on every change
 * <target>/..data -> ..2024_05_01_12_00_00.abc123
 * <target>/token  -> ..data/token         one symlink per top-level name
 * <target>/certs  -> ..data/certs
 * ```
 *
 * A change is published by renaming a `..data_tmp` symlink over `..data` (rename(2) is atomic). Writes
 * only ever go into the timestamped directory this writer has just created, so nothing planted in the
 * target can redirect them; pre-existing entries in the target are removed, never followed.
 */
import { basename, join } from "node:path";
import { DriverError, internal, messageOf } from "../errors.ts";
import { type Logger, silentLogger } from "../log.ts";
import { AT_FDCWD, sysChgrpNoFollow } from "../mount/libc.ts";
import { KeyedLock } from "../volume/keyed-lock.ts";
import type { PayloadWriter, ProviderFile, WriteOptions, WriteResult } from "../volume/ports.ts";
import { parentDirs, type PayloadLimits, quotePath, topLevelName, validatePayload } from "./payload.ts";

/** The symlink that names the live timestamped directory. */
export const DATA_DIR = "..data";
/** The symlink built next to `..data` and renamed over it. */
const NEW_DATA_DIR = "..data_tmp";
/** `..YYYY_MM_DD_HH_MM_SS.<random>`: the only `..data` targets this writer trusts and cleans up. */
const TIMESTAMPED_DIR = /^\.\.\d{4}_\d{2}_\d{2}_\d{2}_\d{2}_\d{2}\.[^/]+$/;
/** Directories must be searchable by any pod user, whatever the driver's umask. */
const DIR_MODE = 0o755;
/** A volume root shared with a group (`WriteOptions.group`): that group may enter it, others may not. */
const GROUP_ROOT_MODE = 0o750;

/** Constructor options of AtomicWriter. */
export interface AtomicWriterOptions {
  limits: PayloadLimits;
  log?: Logger;
}

/**
 * Writes payloads with kubelet AtomicWriter semantics; calls for one directory (by identity, so a volume
 * root's descriptor path and the target path are one directory) run one at a time.
 */
export class AtomicWriter implements PayloadWriter {
  readonly #limits: PayloadLimits;
  readonly #log: Logger;
  readonly #lock = new KeyedLock();

  constructor(options: AtomicWriterOptions) {
    this.#limits = options.limits;
    this.#log = options.log ?? silentLogger;
  }

  /**
   * Validates `files` and makes them the content of `targetDir`. Returns `{changed: false}` without
   * touching the disk when the volume already shows exactly these paths, modes and bytes. Throws a
   * PayloadError for an invalid payload and an INTERNAL DriverError when writing fails; either way the
   * previous payload stays visible and complete.
   */
  write(targetDir: string, files: ProviderFile[], options: WriteOptions = {}): Promise<WriteResult> {
    return this.#serialized(targetDir, () => this.#write(targetDir, files, options.group));
  }

  /** When `targetDir`'s `..data` was last swapped; null when it has no complete payload of ours. */
  writtenAt(targetDir: string): Promise<number | null> {
    return this.#serialized(targetDir, async () => {
      await assertPlainDirectory(targetDir);
      if (await liveDataDir(targetDir) === null) return null;
      return (await Deno.lstat(join(targetDir, DATA_DIR))).mtime?.getTime() ?? 0;
    });
  }

  /** The payload `targetDir` currently shows, sorted by path; null when it has no `..data` of ours. */
  read(targetDir: string): Promise<ProviderFile[] | null> {
    return this.#serialized(targetDir, async () => {
      try {
        await assertPlainDirectory(targetDir);
        const live = await liveDataDir(targetDir);
        return live === null ? null : await readTree(join(targetDir, live));
      } catch (err) {
        if (err instanceof DriverError) throw err;
        throw internal(`could not read the payload in ${targetDir}: ${messageOf(err)}`, err);
      }
    });
  }

  async #write(targetDir: string, files: ProviderFile[], group: number | undefined): Promise<WriteResult> {
    validatePayload(files, this.#limits);
    try {
      return await this.#apply(targetDir, files, group);
    } catch (err) {
      if (err instanceof DriverError) throw err;
      throw internal(`could not write ${files.length} files into ${targetDir}: ${messageOf(err)}`, err);
    }
  }

  async #apply(targetDir: string, files: ProviderFile[], group: number | undefined): Promise<WriteResult> {
    await assertPlainDirectory(targetDir);
    const names = new Set(files.map((f) => topLevelName(f.path)));
    const live = await liveDataDir(targetDir);
    if (
      live !== null && await this.#isUpToDate(targetDir, live, files, names) &&
      (group === undefined || await sharedWith(targetDir, group))
    ) {
      this.#log.info("payload unchanged, nothing written", { targetDir, files: files.length }, 4);
      return { changed: false };
    }

    // Leftovers of an interrupted write go first: the volume is sized for two payloads, not three.
    await this.#removeLeftovers(targetDir, live, null);
    const stamp = new Date().toISOString().slice(0, 19).replace(/[-T:]/g, "_");
    const newDir = await Deno.makeTempDir({ dir: targetDir, prefix: `..${stamp}.` });
    const createdLinks: string[] = [];
    try {
      await Deno.chmod(newDir, DIR_MODE);
      await writeTree(newDir, files);
      // Before the swap: the new files are never visible with the wrong group.
      if (group !== undefined) await shareWithGroup(targetDir, newDir, group);
      await this.#linkTopLevel(targetDir, names, createdLinks);
      if (group !== undefined) { for (const name of names) chgrp(join(targetDir, name), group); }
      await swapDataDir(targetDir, basename(newDir));
    } catch (err) {
      await this.#rollBack(targetDir, newDir, createdLinks);
      throw err;
    }
    // A link's group grants nothing; the new payload is live, so a failure here only gets logged.
    if (group !== undefined) {
      try {
        chgrp(join(targetDir, DATA_DIR), group);
      } catch (err) {
        this.#log.warn("could not give ..data the volume's group", { targetDir, err });
      }
    }
    // The new payload is live from here on; leftovers are retried by the next write (#isUpToDate
    // reports them), so a cleanup failure is logged rather than failing the mount.
    await this.#removeLeftovers(targetDir, basename(newDir), names).catch((err) => {
      this.#log.warn("could not remove stale entries, will retry on the next write", { targetDir, err });
    });
    this.#log.info("payload written", { targetDir, files: files.length, dataDir: basename(newDir) }, 2);
    return { changed: true };
  }

  /**
   * True when the live directory holds exactly `files` and the target shows exactly their top-level
   * names, with no leftovers of an interrupted write.
   */
  async #isUpToDate(
    targetDir: string,
    live: string,
    files: ProviderFile[],
    names: Set<string>,
  ): Promise<boolean> {
    let current: ProviderFile[];
    try {
      current = await readTree(join(targetDir, live));
    } catch (err) {
      this.#log.warn("cannot read the live payload, rewriting it", { targetDir, err });
      return false;
    }
    if (!samePayload(current, files)) return false;

    let linked = 0;
    for await (const entry of Deno.readDir(targetDir)) {
      if (entry.name === DATA_DIR || entry.name === live) continue;
      if (entry.name === NEW_DATA_DIR || TIMESTAMPED_DIR.test(entry.name)) return false;
      const ours = entry.isSymlink && await isDataLink(join(targetDir, entry.name), entry.name);
      if (names.has(entry.name)) {
        if (!ours) return false;
        linked++;
      } else if (entry.isSymlink && await pointsIntoDataDir(join(targetDir, entry.name))) {
        return false;
      }
    }
    return linked === names.size;
  }

  /** Makes every top-level name a `..data/<name>` symlink, replacing (never following) anything else. */
  async #linkTopLevel(targetDir: string, names: Set<string>, created: string[]): Promise<void> {
    for (const name of names) {
      const link = join(targetDir, name);
      const info = await lstatOrNull(link);
      if (info?.isSymlink && await isDataLink(link, name)) continue;
      if (info) {
        this.#log.warn("replacing an entry the writer did not create", { targetDir, name });
        // remove() unlinks a symlink itself and deletes a directory without following links inside it.
        await Deno.remove(link, { recursive: info.isDirectory });
      }
      await Deno.symlink(`${DATA_DIR}/${name}`, link);
      created.push(link);
    }
  }

  /** Undoes a failed write so that only the previous payload remains. */
  async #rollBack(targetDir: string, newDir: string, createdLinks: string[]): Promise<void> {
    // Writes are serialized, so a `..data_tmp` left now can only be this write's.
    for (const path of [newDir, ...createdLinks, join(targetDir, NEW_DATA_DIR)]) {
      await removeIfPresent(path).catch((err) => {
        this.#log.error("could not clean up after a failed write", { targetDir, path, err });
      });
    }
  }

  /**
   * Removes timestamped directories other than `live`, a stale `..data_tmp` and, given the names now
   * served, links to names no longer served.
   */
  async #removeLeftovers(targetDir: string, live: string | null, names: Set<string> | null): Promise<void> {
    const stale: string[] = [];
    for await (const entry of Deno.readDir(targetDir)) {
      const path = join(targetDir, entry.name);
      if (entry.name === DATA_DIR || entry.name === live) continue;
      if (entry.name === NEW_DATA_DIR || TIMESTAMPED_DIR.test(entry.name)) stale.push(path);
      else if (names && !names.has(entry.name) && entry.isSymlink && await pointsIntoDataDir(path)) {
        stale.push(path);
      }
    }
    for (const path of stale) {
      await Deno.remove(path, { recursive: true }).catch((err) => {
        this.#log.warn("could not remove a stale entry, will retry on the next write", {
          targetDir,
          path,
          err,
        });
      });
    }
  }

  /** Runs `operation` after every earlier operation on the same directory has settled. */
  #serialized<T>(targetDir: string, operation: () => Promise<T>): Promise<T> {
    // A synchronous stat keeps the calls in the order they were made.
    let key = targetDir;
    try {
      const info = Deno.statSync(targetDir);
      key = `${info.dev}:${info.ino}`;
    } catch { /* missing: the operation reports it */ }
    return this.#lock.run(key, operation);
  }
}

/** A volume root as the mounter hands it out: the path of a descriptor the driver holds. */
const DESCRIPTOR_PATH = /^\/proc\/self\/fd\/\d+$/;

/**
 * Refuses a target that is missing, not a directory, or a symlink (which could lead anywhere). A volume
 * root from the mounter (`/proc/self/fd/<n>`) is a link by nature that names the driver's own mount.
 */
async function assertPlainDirectory(targetDir: string): Promise<void> {
  const info = DESCRIPTOR_PATH.test(targetDir)
    ? await Deno.stat(targetDir).catch(() => null)
    : await lstatOrNull(targetDir);
  if (info === null) throw internal(`target directory ${targetDir} does not exist`);
  if (info.isSymlink) {
    throw internal(`target directory ${targetDir} is a symlink; refusing to write through it`);
  }
  if (!info.isDirectory) throw internal(`target ${targetDir} is not a directory`);
}

/** The timestamped directory `..data` names, or null when there is no `..data` this writer made. */
async function liveDataDir(targetDir: string): Promise<string | null> {
  const data = join(targetDir, DATA_DIR);
  if (!(await lstatOrNull(data))?.isSymlink) return null;
  const target = await Deno.readLink(data);
  if (!TIMESTAMPED_DIR.test(target)) return null;
  const info = await lstatOrNull(join(targetDir, target));
  return info?.isDirectory ? target : null;
}

/** Writes `files` below `dir`, a directory this writer has just created, with their exact modes. */
async function writeTree(dir: string, files: ProviderFile[]): Promise<void> {
  const made = new Set<string>();
  for (const file of files) {
    for (const parent of parentDirs(file.path)) {
      if (made.has(parent)) continue;
      // mkdir's mode is filtered by the umask; chmod sets it exactly.
      await Deno.mkdir(join(dir, parent));
      await Deno.chmod(join(dir, parent), DIR_MODE);
      made.add(parent);
    }
    // createNew (O_EXCL) never opens an existing file or symlink; Deno applies `mode` exactly, after the
    // umask-filtered create, so no separate chmod is needed (the tests check a 0777 file).
    await Deno.writeFile(join(dir, file.path), file.contents, { createNew: true, mode: file.mode });
  }
}

/**
 * Gives the group `gid` to the volume root, to `newDir` and to everything below it (all made by this
 * writer a moment ago), and makes the root 0750: the group may enter it, other users may not. File modes
 * stay the provider's, so a 0640 file is readable by that group and no one else. Nothing is followed.
 */
async function shareWithGroup(targetDir: string, newDir: string, gid: number): Promise<void> {
  const walk = async (dir: string): Promise<void> => {
    chgrp(dir, gid);
    for await (const entry of Deno.readDir(dir)) {
      const path = join(dir, entry.name);
      if (entry.isDirectory) await walk(path);
      else chgrp(path, gid);
    }
  };
  await walk(newDir);
  // The root is named through the descriptor path; "/." makes fchownat change the directory it leads
  // to, not the /proc link itself. Group first, then mode: the root is never open to a wrong group.
  chgrp(`${targetDir}/.`, gid);
  await Deno.chmod(targetDir, GROUP_ROOT_MODE);
}

/** True when the volume root already has the group `gid` and mode 0750. */
async function sharedWith(targetDir: string, gid: number): Promise<boolean> {
  const info = await Deno.stat(targetDir);
  return info.gid === gid && (info.mode! & 0o7777) === GROUP_ROOT_MODE;
}

/** lchown(path, -1, gid): a symbolic link is changed itself, never followed. */
function chgrp(path: string, gid: number): void {
  sysChgrpNoFollow(AT_FDCWD, path, gid);
}

/** Points `..data` at `live` by renaming a fresh `..data_tmp` symlink over it. */
async function swapDataDir(targetDir: string, live: string): Promise<void> {
  const tmp = join(targetDir, NEW_DATA_DIR);
  const data = join(targetDir, DATA_DIR);
  await removeIfPresent(tmp);
  // rename(2) cannot replace a directory with a symlink; a `..data` that is not a symlink is not ours.
  const existing = await lstatOrNull(data);
  if (existing && !existing.isSymlink) await Deno.remove(data, { recursive: true });
  await Deno.symlink(live, tmp);
  await Deno.rename(tmp, data);
}

/** Every file below `root` (directories are implied by paths), sorted by path. */
async function readTree(root: string): Promise<ProviderFile[]> {
  const files: ProviderFile[] = [];
  const walk = async (relative: string): Promise<void> => {
    for await (const entry of Deno.readDir(relative ? join(root, relative) : root)) {
      const path = relative ? `${relative}/${entry.name}` : entry.name;
      const full = join(root, path);
      if (entry.isDirectory) {
        await walk(path);
      } else if (entry.isFile) {
        const mode = (await Deno.lstat(full)).mode! & 0o777;
        files.push({ path, mode, contents: await Deno.readFile(full) });
      } else {
        throw new Error(`${quotePath(path)} in ${root} is neither a file nor a directory`);
      }
    }
  };
  await walk("");
  return files.sort((a, b) => a.path < b.path ? -1 : a.path > b.path ? 1 : 0);
}

/** Same set of paths, and for each the same mode and bytes. */
function samePayload(current: ProviderFile[], wanted: ProviderFile[]): boolean {
  if (current.length !== wanted.length) return false;
  const byPath = new Map(current.map((f) => [f.path, f]));
  return wanted.every((want) => {
    const have = byPath.get(want.path);
    return have !== undefined && have.mode === want.mode && sameBytes(have.contents, want.contents);
  });
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.byteLength !== b.byteLength) return false;
  for (let i = 0; i < a.byteLength; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** True when the symlink at `link` is `..data/<name>`, the link this writer makes for `name`. */
async function isDataLink(link: string, name: string): Promise<boolean> {
  return await Deno.readLink(link) === `${DATA_DIR}/${name}`;
}

/** True when the symlink at `link` points below `..data`, i.e. this writer made it. */
async function pointsIntoDataDir(link: string): Promise<boolean> {
  return (await Deno.readLink(link)).startsWith(`${DATA_DIR}/`);
}

async function lstatOrNull(path: string): Promise<Deno.FileInfo | null> {
  try {
    return await Deno.lstat(path);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return null;
    throw err;
  }
}

async function removeIfPresent(path: string): Promise<void> {
  try {
    await Deno.remove(path, { recursive: true });
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) throw err;
  }
}
