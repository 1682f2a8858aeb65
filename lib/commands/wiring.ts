/** Builds the publish use case from configuration: shared by `node` and the one-shot `mount`. */
import type { ProviderConfig } from "../config.ts";
import { AtomicWriter } from "../files/atomic-writer.ts";
import { DEFAULT_MAX_FILES } from "../files/payload.ts";
import type { Logger } from "../log.ts";
import { TmpfsMounter } from "../mount/tmpfs.ts";
import { ProviderClient } from "../provider/client.ts";
import { DRIVER_VERSION } from "../version.ts";
import type { SpcSource } from "../volume/ports.ts";
import { type Published, VolumeManager } from "../volume/publish.ts";

export interface Wired {
  volumes: VolumeManager;
  providers: ProviderClient;
  mounter: TmpfsMounter;
  writer: AtomicWriter;
}

/** Wires real parts: FFI tmpfs, the gRPC provider client and the atomic writer. */
export function wireVolumes(
  config: ProviderConfig,
  spcs: SpcSource,
  log: Logger,
  afterPublish?: (published: Published) => Promise<void>,
): Wired {
  const mounter = new TmpfsMounter({ sizeBytes: config.tmpfsSizeBytes, log });
  const writer = new AtomicWriter({
    limits: { maxTotalBytes: config.tmpfsSizeBytes, maxFiles: DEFAULT_MAX_FILES },
    log,
  });
  const providers = new ProviderClient({
    dirs: config.dirs,
    maxRecvBytes: config.maxRecvBytes,
    driverVersion: DRIVER_VERSION,
    log,
  });
  const volumes = new VolumeManager({
    spcs,
    providers,
    mounter,
    writer,
    log,
    providerTimeoutMs: config.timeoutMs,
    afterPublish,
  });
  return { volumes, providers, mounter, writer };
}
