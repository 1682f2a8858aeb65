/**
 * The publish / unpublish use case (DESIGN.md §1): look up the SecretProviderClass, mount a fresh tmpfs,
 * ask the provider for the files, write them atomically. A republish of a mounted volume (kubelet calls
 * NodePublishVolume again because the CSIDriver sets requiresRepublish) rotates the content when rotation
 * is on and the poll interval has passed. The CSI layer only validates and translates.
 */
import { DriverError, GrpcStatus, invalidArgument, messageOf, toDriverError } from "../errors.ts";
import { DATA_DIR } from "../files/atomic-writer.ts";
import { PayloadError } from "../files/payload.ts";
import type { Logger } from "../log.ts";
import type { DriverMetrics } from "../metrics.ts";
import { CONTEXT, FILE_PERMISSION, providerAttributes, providerSecrets } from "./attributes.ts";
import { KeyedLock } from "./keyed-lock.ts";
import type {
  Mounter,
  ObjectVersion,
  PayloadWriter,
  ProviderCaller,
  ProviderFile,
  PublishRequest,
  SecretProviderClass,
  SpcSource,
  VolumeService,
} from "./ports.ts";
import { checkTargetPath } from "./target-path.ts";
import { removeVolume } from "./unpublish.ts";

/** What a successful publish or rotation produced, for the status and sync steps that follow it. */
export interface Published {
  request: PublishRequest;
  targetPath: string;
  spc: SecretProviderClass;
  objectVersions: ObjectVersion[];
  /** False for a rotation that found identical content. */
  changed: boolean;
}

export interface RotationConfig {
  enabled: boolean;
  /** Least time between two provider calls for one volume. */
  pollIntervalMs: number;
}

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
  /** Milliseconds since the epoch; a parameter so tests can move time. */
  now?: () => number;
  /** In [0, 1): spreads the rotations of volumes found after a restart. */
  random?: () => number;
}

/** What the driver remembers of a mounted volume. */
interface VolumeState {
  provider: string;
  /** When the provider was last asked for this volume's content. */
  lastUpdate: number;
  objectVersions: ObjectVersion[];
}

/** Upstream creates missing target directories with this mode. */
const TARGET_DIR_MODE = 0o750;

/** Error reasons reported as `error_type`, as upstream names them (pkg/errors). */
const Reason = {
  ensureMountPoint: "FailedToEnsureMountPoint",
  spcNotFound: "SecretProviderClassNotFound",
  mount: "FailedToMount",
  provider: "GRPCProviderError",
  fileWrite: "FileWriteError",
} as const;

/** The reason a provider client error carries, if any. */
function reasonOf(err: unknown, fallback: string): string {
  const reason = (err as { reason?: unknown }).reason;
  return typeof reason === "string" && reason !== "" ? reason : fallback;
}

/** Publishes, rotates and unpublishes secrets volumes; calls for one target path are serialized. */
export class VolumeManager implements VolumeService {
  readonly #lock = new KeyedLock();
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

  publish(request: PublishRequest): Promise<void> {
    const target = checkTargetPath(request.targetPath);
    return this.#lock.run(target, () => this.#publish(request, target));
  }

  unpublish(_volumeId: string, targetPath: string): Promise<void> {
    const target = checkTargetPath(targetPath);
    return this.#lock.run(target, () => this.#unpublish(target));
  }

  async #publish(request: PublishRequest, target: string): Promise<void> {
    const ctx = request.volumeContext;
    const pod = { pod: ctx[CONTEXT.podName] ?? "", namespace: ctx[CONTEXT.podNamespace] ?? "" };
    const log = this.deps.log.with({ pod: `${pod.namespace}/${pod.pod}`, targetPath: target });
    const started = performance.now();
    let provider = "";
    let reason: string = Reason.ensureMountPoint;
    let mounted = false;
    try {
      if (await this.#preparedMountPoint(target, log)) {
        const republished = await this.#republish(request, target, pod, log);
        // A failed rotation answers OK but is counted as a failed publish (as upstream).
        if (republished !== undefined) {
          this.deps.metrics.nodePublish(republished, (performance.now() - started) / 1000);
        }
        return;
      }
      const spcName = ctx[CONTEXT.spc] ?? "";
      if (spcName === "") throw invalidArgument("secretProviderClass is not set in the volume attributes");
      reason = Reason.spcNotFound;
      const spc = await this.deps.spcs.get(pod.namespace, spcName);
      provider = spc.provider;

      reason = Reason.mount;
      await this.deps.mounter.mount(target);
      mounted = true;
      reason = Reason.provider;
      const response = await this.#fetch(spc, request, target, pod, []);
      reason = Reason.fileWrite;
      await this.#write(target, response.files, spc.provider);
      await this.deps.afterPublish?.({
        request,
        targetPath: target,
        spc,
        objectVersions: response.objectVersions,
        changed: true,
      });
      this.#volumes.set(target, {
        provider,
        lastUpdate: this.#now(),
        objectVersions: response.objectVersions,
      });
      this.deps.metrics.mountedVolumes(this.#volumes.size);
    } catch (err) {
      this.deps.metrics.nodePublishError(provider, reasonOf(err, reason));
      if (mounted) {
        // Undo the mount so that kubelet's retry starts from scratch (upstream does the same).
        log.info("unmounting target path as node publish volume failed", { error: messageOf(err) });
        await this.deps.mounter.unmount(target).catch((unmountErr) =>
          log.error("failed to unmount after a failed publish", { error: messageOf(unmountErr) })
        );
      }
      throw toDriverError(err);
    }
    const seconds = (performance.now() - started) / 1000;
    this.deps.metrics.nodePublish(provider, seconds);
    log.info("node publish volume complete", { provider, durationMs: Math.round(seconds * 1000) });
  }

  /**
   * NodePublishVolume on a mounted target. Without rotation it is a no-op, as upstream. With rotation, once
   * the poll interval has passed, the provider is asked again and the files rewritten if they changed.
   * Returns the provider name (for metrics), or undefined when a rotation failed.
   */
  async #republish(
    request: PublishRequest,
    target: string,
    pod: { pod: string; namespace: string },
    log: Logger,
  ): Promise<string | undefined> {
    const state = this.#volumes.get(target) ?? await this.#recover(target);
    if (!this.deps.rotation.enabled || this.#now() - state.lastUpdate < this.deps.rotation.pollIntervalMs) {
      log.info("target path is already mounted", {}, 2);
      return state.provider;
    }
    const started = performance.now();
    let provider = state.provider;
    let reason: string = Reason.spcNotFound;
    try {
      const spc = await this.deps.spcs.get(pod.namespace, request.volumeContext[CONTEXT.spc] ?? "");
      provider = spc.provider;
      reason = Reason.provider;
      const response = await this.#fetch(spc, request, target, pod, state.objectVersions);
      reason = Reason.fileWrite;
      const { changed } = await this.#write(target, response.files, spc.provider);
      this.#volumes.set(target, {
        provider,
        lastUpdate: this.#now(),
        objectVersions: response.objectVersions,
      });
      await this.deps.afterPublish?.({
        request,
        targetPath: target,
        spc,
        objectVersions: response.objectVersions,
        changed,
      });
      const seconds = (performance.now() - started) / 1000;
      this.deps.metrics.rotation(provider, changed, seconds);
      log.info(changed ? "rotated mounted content" : "rotation found no change; nothing written", {
        provider,
        durationMs: Math.round(seconds * 1000),
      }, changed ? 0 : 2);
    } catch (err) {
      // Like upstream, a failed rotation is not a failed NodePublishVolume: the pod already has complete
      // (older) content, and an error would make kubelet report the mounted volume as failing and retry
      // at its own pace. The failure is logged and counted, and retried on the next republish.
      this.deps.metrics.rotationError(provider, reasonOf(err, reason));
      log.error("rotation failed; the mounted content is kept", { provider, error: messageOf(err) });
      return undefined;
    }
    return provider;
  }

  /**
   * State for a volume mounted before this process started. Its last update is the `..data` link's
   * time, but no earlier than a random point in the poll interval before start-up: a restart spreads the
   * rotations out instead of rotating every volume on its first republish.
   */
  async #recover(target: string): Promise<VolumeState> {
    const written = await Deno.lstat(`${target}/${DATA_DIR}`).then((i) => i.mtime?.getTime() ?? 0, () => 0);
    const spread = this.#startedAt - this.#random() * this.deps.rotation.pollIntervalMs;
    const state = { provider: "", lastUpdate: Math.max(written, spread), objectVersions: [] };
    this.#volumes.set(target, state);
    this.deps.metrics.mountedVolumes(this.#volumes.size);
    return state;
  }

  /**
   * Creates the target directory when missing and tells whether it already holds a published volume. A
   * mount point without a complete payload (an interrupted publish, a stale tmpfs) is unmounted so that it
   * is mounted afresh.
   */
  async #preparedMountPoint(target: string, log: Logger): Promise<boolean> {
    let info: Deno.FileInfo;
    try {
      info = await Deno.lstat(target);
    } catch (err) {
      if (!(err instanceof Deno.errors.NotFound)) throw toDriverError(err);
      await Deno.mkdir(target, { recursive: true, mode: TARGET_DIR_MODE });
      return false;
    }
    if (info.isSymlink) {
      throw invalidArgument(`target path ${target} is a symlink; the driver does not follow it`);
    }
    if (!info.isDirectory) throw invalidArgument(`target path ${target} exists and is not a directory`);
    if (!await this.deps.mounter.isMountPoint(target)) return false;
    try {
      if ((await Deno.lstat(`${target}/${DATA_DIR}`)).isSymlink) return true;
      log.warn("target path is a mount point without a payload link; remounting");
    } catch (err) {
      // No `..data`: a publish was interrupted (driver killed) after mounting; serving that empty volume
      // would start the pod without its secrets. Anything else: a stale mount that cannot be read.
      log.warn(
        err instanceof Deno.errors.NotFound
          ? "target path is a mount point without a complete payload (a publish was interrupted); remounting"
          : "target path is a mount point that cannot be read; remounting",
        { error: messageOf(err) },
      );
    }
    await this.deps.mounter.unmount(target);
    return false;
  }

  /** Asks the SPC's provider for the volume's files, as upstream builds the MountRequest. */
  #fetch(
    spc: SecretProviderClass,
    request: PublishRequest,
    target: string,
    pod: { pod: string; namespace: string },
    currentObjectVersion: ObjectVersion[],
  ) {
    return this.deps.providers.mount(spc.provider, {
      attributes: providerAttributes(spc, request),
      secrets: providerSecrets(request),
      targetPath: target,
      permission: FILE_PERMISSION,
      currentObjectVersion,
    }, { ...pod, timeoutMs: this.deps.providerTimeoutMs });
  }

  async #write(target: string, files: ProviderFile[], provider: string) {
    try {
      return await this.deps.writer.write(target, files);
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

  async #unpublish(target: string): Promise<void> {
    try {
      await removeVolume(target, this.deps.mounter);
    } catch (err) {
      this.deps.metrics.nodeUnpublishError();
      throw err;
    }
    this.#volumes.delete(target);
    await this.deps.afterUnpublish?.(target).catch((err) =>
      this.deps.log.error("failed to record the unpublish", { targetPath: target, error: messageOf(err) })
    );
    this.deps.metrics.nodeUnpublish();
    this.deps.metrics.mountedVolumes(this.#volumes.size);
    this.deps.log.info("node unpublish volume complete", { targetPath: target });
  }
}
