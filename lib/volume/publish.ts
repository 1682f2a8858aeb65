/**
 * The publish / unpublish use case: look up the SecretProviderClass, mount a fresh tmpfs, ask the
 * provider for the files, write them atomically, and check that the target path still leads to that tmpfs
 * before answering. A republish of a mounted volume (kubelet calls NodePublishVolume again because the
 * CSIDriver sets requiresRepublish) rotates the content when rotation is on and the poll interval has
 * passed. The CSI layer only validates and translates; everything the use case does to the file system
 * goes through its ports (ports.ts).
 */
import {
  DriverError,
  GrpcStatus,
  internal,
  invalidArgument,
  messageOf,
  PayloadError,
  toDriverError,
} from "../errors.ts";
import type { Logger } from "../log.ts";
import type { DriverMetrics } from "../metrics.ts";
import { CONTEXT, FILE_PERMISSION, providerAttributes, providerSecrets } from "./attributes.ts";
import { KeyedLock } from "./keyed-lock.ts";
import type {
  MountedVolumes,
  Mounter,
  ObjectVersion,
  PayloadWriter,
  PodRef,
  ProviderCaller,
  ProviderFile,
  Published,
  PublishRequest,
  RotationConfig,
  RotationFailure,
  SecretProviderClass,
  SpcSource,
  Target,
  VolumeService,
} from "./ports.ts";
import { checkTargetPath } from "./target-path.ts";
import { removeVolume } from "./unpublish.ts";

/** Collaborators of the use case. */
export interface VolumeDeps {
  spcs: SpcSource;
  providers: ProviderCaller;
  mounter: Mounter;
  writer: PayloadWriter;
  log: Logger;
  metrics: DriverMetrics;
  rotation: RotationConfig;
  /** Deadline of one provider call. */
  providerTimeoutMs: number;
  /** Called after the files are in place (SPCPS, secret sync); a failure fails the publish like upstream. */
  afterPublish?: (published: Published) => Promise<void>;
  /** Called after a volume was unmounted and removed (SPCPS `mounted: false`); failures are only logged. */
  afterUnpublish?: (targetPath: string) => Promise<void>;
  /** Called after a rotation failed (an Event on the pod); failures are only logged. */
  rotationFailed?: (failure: RotationFailure) => Promise<void>;
  /** Milliseconds since the epoch; a parameter so tests can move time. */
  now?: () => number;
  /** In [0, 1): spreads the rotations of volumes found after a restart. */
  random?: () => number;
}

/** What the driver remembers of a mounted volume. */
interface VolumeState {
  /** The target path kubelet named, and the pod it was published for (what the Secret sync checks). */
  path: string;
  pod: PodRef;
  provider: string;
  /** When the provider was last asked for this volume's content. */
  lastUpdate: number;
  objectVersions: ObjectVersion[];
  /**
   * The fsGroup the files were given (CSI volume_mount_group). Upstream's SPCPS schema has no field for
   * it, so it lives here; after a restart it comes back with kubelet's next republish, which carries the
   * pod's fsGroup again.
   */
  group?: number;
}

/** Error reasons reported as `error_type`, as upstream names them (pkg/errors). */
const Reason = {
  ensureMountPoint: "FailedToEnsureMountPoint",
  spcNotFound: "SecretProviderClassNotFound",
  mount: "FailedToMount",
  provider: "GRPCProviderError",
  fileWrite: "FileWriteError",
} as const;

/** A failure tagged with the `error_type` it is counted under (upstream's reason for the failed step). */
class StepError extends Error {
  /** The class's provider, once it is known: the `provider` label the failure is counted under. */
  provider?: string;
  constructor(readonly reason: string, readonly error: unknown) {
    super(messageOf(error));
  }
}

/** Tags a step failure with the provider it happened for (the first tag wins). */
function forProvider(err: unknown, provider: string): unknown {
  if (err instanceof StepError) err.provider ??= provider;
  return err;
}

/** Runs `step`; a failure is tagged with `reason` unless it already carries one (provider client errors). */
async function step<T>(reason: string, run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (err) {
    if (err instanceof StepError) throw err;
    const own = (err as { reason?: unknown }).reason;
    throw new StepError(typeof own === "string" && own !== "" ? own : reason, err);
  }
}

/** The pod a request is for. */
function podOf(request: PublishRequest): PodRef {
  const ctx = request.volumeContext;
  return {
    name: ctx[CONTEXT.podName] ?? "",
    namespace: ctx[CONTEXT.podNamespace] ?? "",
    uid: ctx[CONTEXT.podUid] ?? "",
  };
}

/**
 * Publishes, rotates and unpublishes secrets volumes. Calls for one target directory are serialized on
 * its identity (not its spelling), so two paths to one directory cannot stack two mounts on it.
 */
export class VolumeManager implements VolumeService, MountedVolumes {
  readonly #lock = new KeyedLock();
  /** Keyed by Target.id. */
  readonly #volumes = new Map<string, VolumeState>();
  readonly #now: () => number;
  readonly #random: () => number;
  readonly #startedAt: number;

  constructor(private readonly deps: VolumeDeps) {
    this.#now = deps.now ?? Date.now;
    this.#random = deps.random ?? Math.random;
    this.#startedAt = this.#now();
  }

  /** Number of volumes this driver knows to be mounted. */
  get mountedCount(): number {
    return this.#volumes.size;
  }

  /**
   * The uid of the pod the volume at `targetPath` was published for, or undefined when this driver has no
   * volume there. A volume mounted before a restart is known again from kubelet's next republish.
   */
  podUid(targetPath: string): string | undefined {
    for (const state of this.#volumes.values()) if (state.path === targetPath) return state.pod.uid;
    return undefined;
  }

  async publish(request: PublishRequest): Promise<void> {
    const path = checkTargetPath(request.targetPath);
    const started = performance.now();
    let provider: string | undefined = "";
    try {
      const target = await step(Reason.ensureMountPoint, async () => {
        const opened = await this.deps.mounter.open(path, { create: true });
        if (opened === null) throw internal(`target path ${path} vanished while it was being created`);
        return opened;
      });
      try {
        provider = await this.#lock.run(target.id, () => this.#publish(request, target));
      } finally {
        this.deps.mounter.close(target);
      }
    } catch (err) {
      const failure = err instanceof StepError ? err : new StepError(Reason.mount, err);
      this.deps.metrics.nodePublishError(failure.provider ?? provider ?? "", failure.reason);
      throw toDriverError(failure.error);
    }
    // A failed rotation answers OK, but the metrics already counted it as a failed publish (as upstream).
    if (provider !== undefined) this.deps.metrics.nodePublish(provider, (performance.now() - started) / 1000);
  }

  async unpublish(_volumeId: string, targetPath: string): Promise<void> {
    const path = checkTargetPath(targetPath);
    try {
      const target = await this.deps.mounter.open(path, { create: false });
      if (target !== null) {
        try {
          await this.#lock.run(target.id, () => this.#unpublish(target));
        } finally {
          this.deps.mounter.close(target);
        }
      }
    } catch (err) {
      this.deps.metrics.nodeUnpublishError();
      throw toDriverError(err);
    }
    await this.deps.afterUnpublish?.(path).catch((err) =>
      this.deps.log.error("failed to record the unpublish", { targetPath: path, error: messageOf(err) })
    );
    this.deps.metrics.nodeUnpublish();
    this.deps.metrics.mountedVolumes(this.#volumes.size);
    this.deps.log.info("node unpublish volume complete", { targetPath: path });
  }

  /** One publish under the target's lock; returns the provider name (for metrics), undefined when a rotation failed. */
  async #publish(request: PublishRequest, target: Target): Promise<string | undefined> {
    const pod = podOf(request);
    const log = this.deps.log.with({ pod: `${pod.namespace}/${pod.name}`, targetPath: target.path });
    const started = performance.now();
    const existing = await step(Reason.ensureMountPoint, () => this.#publishedRoot(target, log));
    if (existing !== null) return await this.#republish(request, target, existing, pod, log);

    const spcName = request.volumeContext[CONTEXT.spc] ?? "";
    if (spcName === "") {
      throw new StepError(
        Reason.ensureMountPoint,
        invalidArgument("secretProviderClass is not set in the volume attributes"),
      );
    }
    const spc = await step(Reason.spcNotFound, () => this.deps.spcs.get(pod.namespace, spcName));
    const provider = spc.provider;
    const root = await step(Reason.mount, () => this.deps.mounter.mount(target)).catch((err) => {
      throw forProvider(err, provider);
    });
    try {
      const response = await step(Reason.provider, () => this.#fetch(spc, request, target, pod, []));
      await step(Reason.fileWrite, () => this.#write(root, response.files, provider, request.mountGroup));
      await step(Reason.mount, () => this.deps.mounter.verify(target, root));
      // Known before afterPublish: the Secret sync it schedules asks whether this is one of our volumes.
      this.#volumes.set(target.id, {
        path: target.path,
        pod,
        provider,
        lastUpdate: this.#now(),
        objectVersions: response.objectVersions,
        group: request.mountGroup,
      });
      await step(Reason.mount, async () =>
        await this.deps.afterPublish?.({
          pod,
          targetPath: target.path,
          spc,
          objectVersions: response.objectVersions,
          changed: true,
        }));
      this.deps.metrics.mountedVolumes(this.#volumes.size);
    } catch (err) {
      this.#volumes.delete(target.id);
      // Undo the mount so that kubelet's retry starts from scratch (upstream does the same).
      log.info("unmounting target path as node publish volume failed", { error: messageOf(err) });
      await this.deps.mounter.unmount(target).catch((unmountErr) =>
        log.error("failed to unmount after a failed publish", { error: messageOf(unmountErr) })
      );
      throw forProvider(err, provider);
    }
    log.info("node publish volume complete", {
      provider,
      durationMs: Math.round(performance.now() - started),
    });
    return provider;
  }

  /**
   * The mounted root and payload time of a target that already holds a published volume, or null when it
   * must be mounted. A tmpfs without a complete payload (an interrupted publish, a stale tmpfs) is
   * unmounted so that it is mounted afresh; a mount that is not the driver's is refused by the mounter.
   */
  async #publishedRoot(target: Target, log: Logger): Promise<{ root: string; writtenAt: number } | null> {
    const root = await this.deps.mounter.mounted(target);
    if (root === null) return null;
    let writtenAt: number | null = null;
    try {
      writtenAt = await this.deps.writer.writtenAt(root);
      // No `..data`: a publish was interrupted (driver killed) after mounting; serving that empty volume
      // would start the pod without its secrets.
      if (writtenAt === null) {
        log.warn(
          "target path is a mount point without a complete payload (a publish was interrupted); remounting",
        );
      }
    } catch (err) {
      log.warn("target path is a mount point that cannot be read; remounting", { error: messageOf(err) });
    }
    if (writtenAt !== null) return { root, writtenAt };
    await this.deps.mounter.unmount(target);
    return null;
  }

  /**
   * NodePublishVolume on a published target. Without rotation it is a no-op, as upstream. With rotation,
   * once the poll interval has passed, the provider is asked again and the files rewritten if they
   * changed. Returns the provider name (for metrics), or undefined when the rotation failed.
   */
  async #republish(
    request: PublishRequest,
    target: Target,
    existing: { root: string; writtenAt: number },
    pod: PodRef,
    log: Logger,
  ): Promise<string | undefined> {
    const state = this.#volumes.get(target.id) ?? this.#recover(target, existing.writtenAt, pod);
    if (!this.deps.rotation.enabled || this.#now() - state.lastUpdate < this.deps.rotation.pollIntervalMs) {
      log.info("target path is already mounted", {}, 2);
      return state.provider;
    }
    const started = performance.now();
    let provider = state.provider;
    const spcName = request.volumeContext[CONTEXT.spc] ?? "";
    try {
      const spc = await step(Reason.spcNotFound, () => this.deps.spcs.get(pod.namespace, spcName));
      provider = spc.provider;
      const response = await step(
        Reason.provider,
        () => this.#fetch(spc, request, target, pod, state.objectVersions),
      );
      const group = request.mountGroup ?? state.group;
      const { changed } = await step(
        Reason.fileWrite,
        () => this.#write(existing.root, response.files, spc.provider, group),
      );
      this.#volumes.set(target.id, {
        ...state,
        group,
        provider,
        lastUpdate: this.#now(),
        objectVersions: response.objectVersions,
      });
      await step(Reason.fileWrite, async () =>
        await this.deps.afterPublish?.({
          pod,
          targetPath: target.path,
          spc,
          objectVersions: response.objectVersions,
          changed,
        }));
      const seconds = (performance.now() - started) / 1000;
      this.deps.metrics.rotation(provider, changed, seconds);
      log.info(changed ? "rotated mounted content" : "rotation found no change; nothing written", {
        provider,
        durationMs: Math.round(seconds * 1000),
      }, changed ? 0 : 2);
    } catch (err) {
      // Like upstream, a failed rotation is not a failed NodePublishVolume: the pod already has complete
      // (older) content, and an error would make kubelet report the mounted volume as failing and retry
      // at its own pace. The failure is logged, counted, reported on the pod, and retried on the next
      // republish.
      const failure = err instanceof StepError ? err : new StepError(Reason.fileWrite, err);
      this.deps.metrics.rotationError(provider, failure.reason);
      log.error("rotation failed; the mounted content is kept", { provider, error: failure.message });
      await this.deps.rotationFailed?.({ pod, targetPath: target.path, spcName, message: failure.message })
        .catch((hookErr) => log.error("failed to report the failed rotation", { error: messageOf(hookErr) }));
      return undefined;
    }
    return provider;
  }

  /**
   * State for a volume mounted before this process started. Its last update is when its payload was
   * written, but no earlier than a random point in the poll interval before start-up: a restart spreads
   * the rotations out instead of rotating every volume on its first republish.
   */
  #recover(target: Target, writtenAt: number, pod: PodRef): VolumeState {
    const spread = this.#startedAt - this.#random() * this.deps.rotation.pollIntervalMs;
    const state = {
      path: target.path,
      pod,
      provider: "",
      lastUpdate: Math.max(writtenAt, spread),
      objectVersions: [],
    };
    this.#volumes.set(target.id, state);
    this.deps.metrics.mountedVolumes(this.#volumes.size);
    return state;
  }

  /** Asks the SPC's provider for the volume's files, as upstream builds the MountRequest. */
  #fetch(
    spc: SecretProviderClass,
    request: PublishRequest,
    target: Target,
    pod: PodRef,
    currentObjectVersion: ObjectVersion[],
  ) {
    return this.deps.providers.mount(spc.provider, {
      attributes: providerAttributes(spc, request),
      secrets: providerSecrets(request),
      targetPath: target.path,
      permission: FILE_PERMISSION,
      currentObjectVersion,
    }, { pod: pod.name, namespace: pod.namespace, timeoutMs: this.deps.providerTimeoutMs });
  }

  async #write(root: string, files: ProviderFile[], provider: string, group: number | undefined) {
    try {
      return await this.deps.writer.write(root, files, group === undefined ? {} : { group });
    } catch (err) {
      if (err instanceof PayloadError) {
        throw new DriverError(
          GrpcStatus.INTERNAL,
          `provider "${provider}" returned an invalid file: ${err.message}`,
        );
      }
      throw err;
    }
  }

  async #unpublish(target: Target): Promise<void> {
    await removeVolume(target, this.deps.mounter);
    this.#volumes.delete(target.id);
  }
}
