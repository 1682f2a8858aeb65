/**
 * `mount` / `unmount`: one-shot debugging without a CSI client. `mount` reads an SPC file, calls its
 * provider, mounts a tmpfs on the target and writes the files, exactly as NodePublishVolume would.
 */
import type { MountConfig, UnmountConfig } from "../config.ts";
import { invalidArgument } from "../errors.ts";
import { createLogger } from "../log.ts";
import { DEFAULT_TMPFS_SIZE_BYTES, TmpfsMounter } from "../mount/tmpfs.ts";
import { readSpcManifests } from "../spc/files.ts";
import { toSecretProviderClass } from "../spc/parse.ts";
import { CONTEXT } from "../volume/attributes.ts";
import { checkTargetPath } from "../volume/target-path.ts";
import { removeVolume } from "../volume/unpublish.ts";
import { wireVolumes } from "./wiring.ts";

/** Mounts the secrets of the first SecretProviderClass in `--spc` on `--target`. */
export async function runMount(config: MountConfig): Promise<number> {
  const log = createLogger(config.logging);
  const [manifest] = await readSpcManifests(config.spcFile);
  if (!manifest) throw invalidArgument(`${config.spcFile} holds no SecretProviderClass`);
  const spc = toSecretProviderClass(manifest, config.spcFile);
  const { volumes, providers } = wireVolumes(config.provider, { get: () => Promise.resolve(spc) }, log);
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
  } finally {
    providers.close();
  }
  console.log(`mounted ${spc.namespace}/${spc.name} (provider ${spc.provider}) on ${config.target}`);
  return 0;
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
    } finally {
      mounter.close(target);
    }
  }
  console.log(`unmounted and removed ${path}`);
  return 0;
}
