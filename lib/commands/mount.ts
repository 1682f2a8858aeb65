/**
 * `mount` / `unmount`: one-shot debugging without a CSI client. `mount` reads an SPC file, calls its
 * provider, mounts a tmpfs on the target and writes the files, exactly as NodePublishVolume would.
 */
import { dirname } from "node:path";
import type { MountConfig, UnmountConfig } from "../config.ts";
import { DriverError, GrpcStatus, invalidArgument } from "../errors.ts";
import { routeGrpcLogs } from "../grpc-logging.ts";
import { createLogger } from "../log.ts";
import { DEFAULT_TMPFS_SIZE_BYTES, TmpfsMounter } from "../mount/tmpfs.ts";
import { readSpcManifests } from "../spc/files.ts";
import { toSecretProviderClass } from "../spc/parse.ts";
import { CONTEXT } from "../volume/attributes.ts";
import { checkTargetPath } from "../volume/target-path.ts";
import { removeVolume } from "../volume/unpublish.ts";
import { wireVolumes } from "./wiring.ts";

/** The directories a publish on `target` would create: `target` and its missing parents, deepest first. */
async function missingDirs(target: string): Promise<string[]> {
  const missing: string[] = [];
  for (let dir = target; dir !== dirname(dir); dir = dirname(dir)) {
    try {
      await Deno.lstat(dir);
      break;
    } catch (err) {
      if (!(err instanceof Deno.errors.NotFound)) break;
      missing.push(dir);
    }
  }
  return missing;
}

/** Removes the directories a failed mount created, as long as they are empty. */
async function removeCreated(dirs: string[]): Promise<void> {
  for (const dir of dirs) {
    try {
      await Deno.remove(dir);
    } catch {
      return; // not created after all, or not empty: leave it and everything above it
    }
  }
}

/** Mounts the secrets of the first SecretProviderClass in `--spc` on `--target`. */
export async function runMount(config: MountConfig): Promise<number> {
  const log = createLogger(config.logging);
  routeGrpcLogs(log, config.logging.verbosity);
  const [manifest] = await readSpcManifests(config.spcFile);
  if (!manifest) throw invalidArgument(`${config.spcFile} holds no SecretProviderClass`);
  const spc = toSecretProviderClass(manifest, config.spcFile);
  const { volumes, providers } = wireVolumes(config.provider, { get: () => Promise.resolve(spc) }, log);
  const created = await missingDirs(checkTargetPath(config.target));
  try {
    await volumes.publish({
      volumeId: `debug-${config.pod}`,
      targetPath: config.target,
      readonly: true,
      volumeContext: {
        [CONTEXT.spc]: spc.name,
        [CONTEXT.podName]: config.pod,
        [CONTEXT.podNamespace]: config.namespace,
      },
      secrets: {},
    });
  } catch (err) {
    await removeCreated(created);
    throw err;
  } finally {
    providers.close();
  }
  console.log(`mounted ${spc.namespace}/${spc.name} (provider ${spc.provider}) on ${config.target}`);
  return 0;
}

/** At most this many names of what is left in a directory go into an error. */
const LISTED_ENTRIES = 5;

/** "a, b and 3 more": what is in `dir`, for an error that says why it was not removed. */
async function contentsOf(dir: string): Promise<string> {
  const names: string[] = [];
  for await (const entry of Deno.readDir(dir)) names.push(entry.name);
  names.sort();
  const shown = names.slice(0, LISTED_ENTRIES).map((n) => JSON.stringify(n)).join(", ");
  return names.length > LISTED_ENTRIES ? `${shown} and ${names.length - LISTED_ENTRIES} more` : shown;
}

/** Unmounts `--target` and removes it, as NodeUnpublishVolume would. */
export async function runUnmount(config: UnmountConfig): Promise<number> {
  const path = checkTargetPath(config.target);
  const mounter = new TmpfsMounter({
    sizeBytes: DEFAULT_TMPFS_SIZE_BYTES,
    log: createLogger(config.logging),
  });
  const target = await mounter.open(path, { create: false });
  if (target !== null) {
    try {
      await removeVolume(target, mounter);
    } catch (err) {
      const left = await contentsOf(path).catch(() => "");
      if (left === "" || await mounter.mounted(target) !== null) throw err;
      throw new DriverError(
        GrpcStatus.FAILED_PRECONDITION,
        `unmounted ${path}, but did not remove it: it still holds ${left}, which the driver did not write`,
      );
    } finally {
      mounter.close(target);
    }
  }
  console.log(`unmounted and removed ${path}`);
  return 0;
}
