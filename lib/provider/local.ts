/**
 * The embedded `local` provider: serves files under a root directory as secret objects, so the whole
 * mount path can be tried on one machine without a cloud secret store.
 *
 * The SecretProviderClass lists the files in its `objects` parameter, a YAML list:
 *
 * ```yaml
 * objects: |
 *   - objectName: db/password     # path below --root
 *     objectAlias: password       # file name in the mount (default: objectName)
 *     mode: "0400"                # default: the request's permission (0644)
 * ```
 *
 * Object versions are SHA-256 hashes of the contents, so a changed file shows up as a rotation.
 */
import { createHash } from "node:crypto";
import { isAbsolute, join, relative, sep } from "node:path";
import { parse as parseYaml } from "yaml";
import { DriverError, GrpcStatus, invalidArgument, messageOf, notFound } from "../errors.ts";
import { isRecord } from "../json.ts";
import type { Logger } from "../log.ts";
import { DRIVER_VERSION } from "../version.ts";
import { type ProviderImplementation, type ProviderServer, serveProvider } from "./server.ts";
import {
  PROVIDER_API_VERSION,
  type WireFile,
  type WireMountRequest,
  type WireMountResponse,
  type WireObjectVersion,
} from "./wire.ts";

/** The provider name SecretProviderClasses use (`spec.provider: local`). */
export const LOCAL_PROVIDER_NAME = "local";

/** Reported as VersionResponse.runtime_name. */
export const LOCAL_RUNTIME_NAME = "secrets-store-csi-local";

/** Where the `local` provider listens and what it serves. */
export interface LocalProviderOptions {
  /** Where `local.sock` is created (`--provider-volume`); created if missing. */
  socketDir: string;
  /** The directory objects are read from (`--root`). */
  root: string;
  log: Logger;
}

/** One entry of the `objects` parameter, validated. */
interface LocalObject {
  objectName: string;
  objectAlias: string;
  mode: number | undefined;
}

/** Serves the `local` provider on `<socketDir>/local.sock`. */
export async function serveLocalProvider(options: LocalProviderOptions): Promise<ProviderServer> {
  const rootInfo = await Deno.stat(options.root).catch((err) => {
    throw invalidArgument(`the local provider's root ${options.root} cannot be used: ${messageOf(err)}`);
  });
  if (!rootInfo.isDirectory) {
    throw invalidArgument(`the local provider's root ${options.root} is not a directory`);
  }
  await Deno.mkdir(options.socketDir, { recursive: true });
  const socketPath = join(options.socketDir, `${LOCAL_PROVIDER_NAME}.sock`);
  const server = await serveProvider(socketPath, localProvider(options.root, options.log), options.log);
  options.log.info("local provider listening", { socketPath, root: options.root });
  return server;
}

/** The `local` provider's Version and Mount, reading objects below `root`. */
export function localProvider(root: string, log: Logger): ProviderImplementation {
  return {
    version: () =>
      Promise.resolve({
        version: PROVIDER_API_VERSION,
        runtime_name: LOCAL_RUNTIME_NAME,
        runtime_version: DRIVER_VERSION,
      }),
    mount: (request) => mount(root, request, log),
  };
}

async function mount(root: string, request: WireMountRequest, log: Logger): Promise<WireMountResponse> {
  const objects = parseObjects(request.attributes);
  const defaultMode = parsePermission(request.permission);
  const realRoot = await Deno.realPath(root);
  const files: WireFile[] = [];
  const versions = new Map<string, string>();
  for (const object of objects) {
    const contents = await readObject(realRoot, object.objectName);
    files.push({ path: object.objectAlias, mode: object.mode ?? defaultMode, contents });
    versions.set(object.objectName, createHash("sha256").update(contents).digest("hex"));
  }
  const objectVersions = [...versions].map(([id, version]) => ({ id, version }));
  logChanges(request.current_object_version, objectVersions, log);
  return { object_version: objectVersions, files };
}

/** Logs (v3) which objects differ from what is mounted now: ids only, never contents. */
function logChanges(current: WireObjectVersion[], next: WireObjectVersion[], log: Logger): void {
  if (current.length === 0) return;
  const before = new Map(current.map(({ id, version }) => [id, version]));
  const changed = next.filter(({ id, version }) => before.get(id) !== version).map(({ id }) => id);
  const nextIds = new Set(next.map(({ id }) => id));
  const removed = current.filter(({ id }) => !nextIds.has(id)).map(({ id }) => id);
  log.info("local objects compared with the mounted versions", { changed, removed }, 3);
}

function parseObjects(attributes: string): LocalObject[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(attributes);
  } catch (err) {
    throw invalidArgument(`the mount attributes are not valid JSON: ${messageOf(err)}`);
  }
  if (!isRecord(parsed)) throw invalidArgument("the mount attributes are not a JSON object");
  const text = parsed.objects;
  if (typeof text !== "string" || text.trim() === "") {
    throw invalidArgument(
      'the SecretProviderClass parameter "objects" is missing: list the files to mount, e.g. "- objectName: db/password"',
    );
  }
  let list: unknown;
  try {
    // YAML 1.1 like Kubernetes manifests, so that `mode: 0400` is octal as people mean it.
    list = parseYaml(text, { version: "1.1" });
  } catch (err) {
    throw invalidArgument(`the parameter "objects" is not valid YAML: ${messageOf(err)}`);
  }
  if (!Array.isArray(list) || list.length === 0) {
    throw invalidArgument(
      'the parameter "objects" must be a non-empty YAML list of {objectName, objectAlias, mode}',
    );
  }
  const objects = list.map(parseObject);
  const aliases = new Set<string>();
  for (const { objectAlias } of objects) {
    if (aliases.has(objectAlias)) {
      throw invalidArgument(`two objects are mounted as ${JSON.stringify(objectAlias)}`);
    }
    aliases.add(objectAlias);
  }
  return objects;
}

function parseObject(entry: unknown, index: number): LocalObject {
  if (!isRecord(entry)) throw invalidArgument(`objects[${index}] is not a mapping with an objectName`);
  const { objectName, objectAlias, mode } = entry;
  if (typeof objectName !== "string" || objectName === "") {
    throw invalidArgument(`objects[${index}] has no objectName (a path below the local provider's root)`);
  }
  checkRelative(objectName, `object ${JSON.stringify(objectName)}`);
  if (objectAlias !== undefined && (typeof objectAlias !== "string" || objectAlias === "")) {
    throw invalidArgument(`object ${JSON.stringify(objectName)} has an objectAlias that is not a file name`);
  }
  if (objectAlias !== undefined) checkRelative(objectAlias, `objectAlias ${JSON.stringify(objectAlias)}`);
  return { objectName, objectAlias: objectAlias ?? objectName, mode: parseMode(objectName, mode) };
}

/** Rejects absolute paths and `..` elements: objects stay below the root, files below the mount. */
function checkRelative(path: string, what: string): void {
  if (isAbsolute(path)) throw invalidArgument(`${what} is an absolute path; it must be relative`);
  if (path.split("/").includes("..")) throw invalidArgument(`${what} contains "..": it must stay inside`);
}

/** A mode is an octal string ("0400", "400") or a number (YAML 1.1 reads 0400 as octal); 0 to 0777. */
function parseMode(objectName: string, mode: unknown): number | undefined {
  if (mode === undefined) return undefined;
  const bits = typeof mode === "string" && /^0?[0-7]{1,3}$/.test(mode) ? parseInt(mode, 8) : mode;
  if (typeof bits !== "number" || !Number.isInteger(bits) || bits < 0 || bits > 0o777) {
    throw invalidArgument(
      `object ${JSON.stringify(objectName)} has mode ${
        JSON.stringify(mode)
      }; use an octal string from "0000" to "0777"`,
    );
  }
  return bits;
}

/** MountRequest.permission is a JSON number in decimal ("420" = 0644). */
function parsePermission(permission: string): number {
  const bits = Number(permission);
  if (permission.trim() === "" || !Number.isInteger(bits) || bits < 0 || bits > 0o777) {
    throw invalidArgument(
      `the mount permission ${JSON.stringify(permission)} is not a file mode from 0 to 511`,
    );
  }
  return bits;
}

/** Reads `objectName` below `realRoot`, refusing anything that resolves (through symlinks) outside it. */
async function readObject(realRoot: string, objectName: string): Promise<Uint8Array> {
  const what = `object ${JSON.stringify(objectName)}`;
  let resolved: string;
  try {
    resolved = await Deno.realPath(join(realRoot, objectName));
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) {
      throw notFound(`${what} not found under the local provider's root`);
    }
    throw new DriverError(GrpcStatus.INTERNAL, `${what} cannot be resolved: ${messageOf(err)}`);
  }
  const inside = relative(realRoot, resolved);
  if (inside === "" || inside === ".." || inside.startsWith(`..${sep}`) || isAbsolute(inside)) {
    throw invalidArgument(`${what} resolves outside the local provider's root`);
  }
  const info = await Deno.stat(resolved);
  if (!info.isFile) throw invalidArgument(`${what} is not a regular file`);
  try {
    return await Deno.readFile(resolved);
  } catch (err) {
    throw new DriverError(GrpcStatus.INTERNAL, `${what} cannot be read: ${messageOf(err)}`);
  }
}
