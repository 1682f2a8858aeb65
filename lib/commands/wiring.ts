/** Builds the publish use case from configuration: shared by `node` and the one-shot `mount`. */
import type { ProviderConfig } from "../config.ts";
import { AtomicWriter } from "../files/atomic-writer.ts";
import { DEFAULT_MAX_FILES } from "../files/payload.ts";
import type { Logger } from "../log.ts";
import { TmpfsMounter } from "../mount/tmpfs.ts";
import { ProviderClient } from "../provider/client.ts";
import { DRIVER_VERSION } from "../version.ts";
import type { Published, RotationConfig, RotationFailure, SpcSource } from "../volume/ports.ts";
import { VolumeManager } from "../volume/publish.ts";
import { type DriverMetrics, noMetrics } from "../metrics.ts";

export interface Wired {
  volumes: VolumeManager;
  providers: ProviderClient;
  mounter: TmpfsMounter;
  writer: AtomicWriter;
}

/** The atomic writer, with payload limits that fit the tmpfs size cap, a rotation included. */
export function createWriter(config: ProviderConfig, log: Logger): AtomicWriter {
  return new AtomicWriter({
    limits: {
      maxTotalBytes: config.tmpfsSizeBytes,
      maxFiles: DEFAULT_MAX_FILES,
      volumeBytes: config.tmpfsSizeBytes,
    },
    log,
  });
}

/** Optional parts: rotation is off, metrics go nowhere and nothing follows a publish unless given. */
export interface WireOptions {
  /** A writer shared with other readers of the volumes (the Secret sync); one is created otherwise. */
  writer?: AtomicWriter;
  metrics?: DriverMetrics;
  rotation?: RotationConfig;
  afterPublish?: (published: Published) => Promise<void>;
  afterUnpublish?: (targetPath: string) => Promise<void>;
  rotationFailed?: (failure: RotationFailure) => Promise<void>;
  /** The use case's clock, for tests. */
  now?: () => number;
}

/** Wires real parts: FFI tmpfs, the gRPC provider client and the atomic writer. */
export function wireVolumes(
  config: ProviderConfig,
  spcs: SpcSource,
  log: Logger,
  options: WireOptions = {},
): Wired {
  const mounter = new TmpfsMounter({
    sizeBytes: config.tmpfsSizeBytes,
    kubeletRootDir: config.kubeletRootDir,
    log,
  });
  const writer = options.writer ?? createWriter(config, log);
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
    metrics: options.metrics ?? noMetrics,
    rotation: options.rotation ?? { enabled: false, pollIntervalMs: 0 },
    afterPublish: options.afterPublish,
    afterUnpublish: options.afterUnpublish,
    rotationFailed: options.rotationFailed,
    now: options.now,
  });
  return { volumes, providers, mounter, writer };
}
