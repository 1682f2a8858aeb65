/**
 * Sync as Kubernetes Secret: for each SecretProviderClassPodStatus of this node, every
 * `spec.secretObjects[]` of its class becomes a Secret built from the files mounted in the pod.
 *
 * - Triggers: the SPCPS watch (this node's label), a change of a class, every publish and rotation
 *   ({@link SecretSync.enqueue}), and a periodic resync of every object.
 * - Writes: a missing Secret is created; an existing one that carries the managed label is updated when
 *   its data, type-preserving labels/annotations or owners differ (a rotation reaches it); a Secret the
 *   driver did not create is left alone and reported.
 * - Owners, as upstream's patcher: the owners of the pod (its ReplicaSet, StatefulSet, ...) or, for a pod
 *   without owners, the SPCPS (itself owned by the pod). References are only ever added, so the Secret is
 *   garbage-collected with its last consumer.
 * - Reads (beyond upstream) only a volume this driver published, for the pod the SPCPS names
 *   ({@link MountedVolumes}, the VolumeManager's answer); an SPCPS pointing elsewhere is refused and reported.
 * - Failures (an invalid secret object, an objectName not mounted, an API error) become a Warning event
 *   on the pod and an error metric; the object is retried with exponential backoff. Nothing throws out.
 */
import { messageOf } from "../errors.ts";
import { sameJson } from "../json.ts";
import type { Logger } from "../log.ts";
import type { DriverMetrics } from "../metrics.ts";
import type { MountedVolumes, ProviderFile, SpcSource } from "../volume/ports.ts";
import {
  KubeApiError,
  type KubeClient,
  type KubeObject,
  type OwnerReference,
  retryOnConflict,
} from "./api.ts";
import { type Clock, systemClock, type Timer } from "./clock.ts";
import type { EventRecorder } from "./events.ts";
import { type ObjectCache, objectKey } from "./informer.ts";
import { type DesiredSecret, desiredSecret, MANAGED_LABEL, SecretObjectError } from "./secret-data.ts";
import { type Spcps, SPCPS_API_VERSION, SPCPS_KIND } from "./spcps.ts";

/** Reads what a volume shows (AtomicWriter.read). */
export interface MountedReader {
  read(targetDir: string): Promise<ProviderFile[] | null>;
}

/** Options of {@link SecretSync}. */
export interface SecretSyncOptions {
  api: KubeClient;
  /** This node's SPCPS objects. */
  spcps: ObjectCache<Spcps>;
  spcs: SpcSource;
  reader: MountedReader;
  volumes: MountedVolumes;
  events: Pick<EventRecorder, "warn">;
  metrics: DriverMetrics;
  log: Logger;
  /** Every object is synced again this often (upstream requeues after 5 min on success). */
  resyncMs: number;
  /** First retry delay after a failure, doubled per failure up to `maxBackoffMs`. */
  initialBackoffMs: number;
  maxBackoffMs: number;
  /** Retry and resync timers, durations (the system clock unless a test moves time). */
  clock?: Clock;
}

/** Upstream's event reason for every sync failure. */
const FAILED_REASON = "FailedToCreateSecret";
/** error_type of a refused SPCPS (beyond upstream, which reads any path). */
export const NOT_MOUNTED_HERE = "TargetPathNotMountedByDriver";

interface PodObject extends KubeObject {
  status?: { phase?: string };
}

interface SecretObject extends KubeObject {
  type?: string;
  data?: Record<string, string>;
}

/** A failure worth a retry; already reported (event, metric, log) when thrown. */
class RetryLater extends Error {}

function base64(bytes: Uint8Array): string {
  let s = "";
  for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(s);
}

/** Sorted keys, so that comparisons do not depend on key order. */
function sorted(map: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(map).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

/**
 * Keys that Kubernetes' own controllers add to a Secret of a type, and that a sync must keep: the token
 * controller fills `ca.crt` and `namespace` into every service-account token Secret. Dropping them would
 * make the sync and the controller rewrite the Secret in turn.
 */
const CONTROLLER_KEYS: Record<string, string[]> = {
  "kubernetes.io/service-account-token": ["ca.crt", "namespace"],
};

/** `wanted`, plus the controller-owned keys of `type` that `current` has and `wanted` does not set. */
function withControllerKeys(
  type: string,
  current: Record<string, string>,
  wanted: Record<string, string>,
): Record<string, string> {
  const kept = (CONTROLLER_KEYS[type] ?? []).filter((k) => k in current && !(k in wanted));
  if (kept.length === 0) return wanted;
  return sorted({ ...wanted, ...Object.fromEntries(kept.map((k) => [k, current[k]])) });
}

/** The Secret sync controller. */
export class SecretSync {
  readonly #options: SecretSyncOptions;
  readonly #clock: Clock;
  readonly #queue = new Set<string>();
  readonly #retryTimers = new Map<string, Timer>();
  readonly #failures = new Map<string, number>();
  readonly #abort = new AbortController();
  #resync: Timer | undefined;
  #wake: (() => void) | undefined;
  #worker: Promise<void> | undefined;

  constructor(options: SecretSyncOptions) {
    this.#options = options;
    this.#clock = options.clock ?? systemClock;
  }

  /** Starts the worker and the periodic resync. */
  start(): void {
    if (this.#worker !== undefined) return;
    const resync = () => {
      for (const o of this.#options.spcps.list()) this.enqueue(o.metadata.namespace!, o.metadata.name!);
      this.#resync = this.#clock.after(this.#options.resyncMs, resync);
    };
    this.#resync = this.#clock.after(this.#options.resyncMs, resync);
    this.#worker = this.#work();
  }

  /** Schedules a sync of SPCPS `namespace/name` (several requests before it runs make one sync). */
  enqueue(namespace: string, name: string): void {
    if (this.#abort.signal.aborted) return;
    const key = objectKey(namespace, name);
    this.#retryTimers.get(key)?.cancel();
    this.#retryTimers.delete(key);
    this.#queue.add(key);
    this.#wake?.();
  }

  /** Schedules every SPCPS of class `namespace/name` (its secretObjects may have changed). */
  enqueueClass(namespace: string, name: string): void {
    for (const o of this.#options.spcps.list()) {
      if (o.metadata.namespace === namespace && o.status?.secretProviderClassName === name) {
        this.enqueue(namespace, o.metadata.name!);
      }
    }
  }

  /** Stops the worker (after the sync in progress) and every timer. */
  async stop(): Promise<void> {
    this.#abort.abort();
    this.#resync?.cancel();
    for (const timer of this.#retryTimers.values()) timer.cancel();
    this.#retryTimers.clear();
    this.#wake?.();
    await this.#worker;
  }

  async #work(): Promise<void> {
    const signal = this.#abort.signal;
    while (!signal.aborted) {
      const key = this.#queue.values().next().value;
      if (key === undefined) {
        await new Promise<void>((resolve) => (this.#wake = resolve));
        this.#wake = undefined;
        continue;
      }
      this.#queue.delete(key);
      const slash = key.indexOf("/");
      try {
        await this.#reconcile(key.slice(0, slash), key.slice(slash + 1));
        this.#failures.delete(key);
      } catch (err) {
        if (!(err instanceof RetryLater)) {
          this.#options.log.error("secret sync failed", { spcps: key, error: messageOf(err) });
        }
        this.#retry(key);
      }
    }
  }

  #retry(key: string): void {
    if (this.#abort.signal.aborted) return;
    const failures = (this.#failures.get(key) ?? 0) + 1;
    this.#failures.set(key, failures);
    const { initialBackoffMs, maxBackoffMs } = this.#options;
    const delay = Math.min(initialBackoffMs * 2 ** (failures - 1), maxBackoffMs);
    this.#retryTimers.get(key)?.cancel();
    this.#retryTimers.set(
      key,
      this.#clock.after(delay, () => {
        this.#retryTimers.delete(key);
        this.#queue.add(key);
        this.#wake?.();
      }),
    );
  }

  async #reconcile(namespace: string, name: string): Promise<void> {
    const spcps = this.#options.spcps.get(namespace, name);
    const status = spcps?.status;
    if (spcps === undefined || status === undefined || !status.mounted) return;
    const log = this.#options.log.with({
      spcps: `${namespace}/${name}`,
      pod: `${namespace}/${status.podName}`,
    });
    const spc = await this.#options.spcs.get(namespace, status.secretProviderClassName);
    if (spc.secretObjects.length === 0) return;

    const pod = await this.#options.api.get<PodObject>("pods", namespace, status.podName).catch((err) => {
      if (err instanceof KubeApiError && err.notFound) {
        throw new RetryLater(`pod ${namespace}/${status.podName} not found`);
      }
      throw err;
    });
    const owner = spcps.metadata.ownerReferences?.find((r) => r.kind === "Pod");
    const phase = pod.status?.phase;
    if (pod.metadata.deletionTimestamp || phase === "Succeeded" || phase === "Failed") return;
    if (owner !== undefined && owner.uid !== pod.metadata.uid) return; // a stale status of an older pod

    const started = this.#clock.now();
    const fail = async (errorType: string, message: string): Promise<void> => {
      log.error("failed to sync secret", { error: message });
      this.#options.metrics.syncK8sSecretError(spc.provider, errorType);
      await this.#options.events.warn(pod, FAILED_REASON, message);
    };

    // Only a volume this driver mounted, for this very pod: otherwise an SPCPS written by hand could make
    // the driver (root) copy another pod's files, its service account token say, into a Secret.
    const mountedFor = this.#options.volumes.podUid(status.targetPath);
    if (mountedFor === undefined || mountedFor !== pod.metadata.uid) {
      await fail(
        NOT_MOUNTED_HERE,
        mountedFor === undefined
          ? `refusing to sync from ${status.targetPath}: it is not a volume this driver mounted`
          : `refusing to sync from ${status.targetPath}: it was mounted for another pod than ${namespace}/${status.podName}`,
      );
      throw new RetryLater();
    }

    let files: ProviderFile[] | null;
    try {
      files = await this.#options.reader.read(status.targetPath);
    } catch (err) {
      files = null;
      log.warn("cannot read mounted files", { error: messageOf(err) });
    }
    if (files === null) {
      await fail("FailedToReadMountedFiles", `failed to get mounted files of ${status.targetPath}`);
      throw new RetryLater();
    }

    const owners = this.#owners(pod, spcps);
    const spcRef = `${namespace}/${spc.name}`;
    let written = 0;
    let failed = false;
    for (const [index, secretObject] of spc.secretObjects.entries()) {
      let desired: DesiredSecret;
      try {
        desired = desiredSecret(secretObject, index, spcRef, files);
      } catch (err) {
        if (!(err instanceof SecretObjectError)) throw err;
        await fail(err.reason, err.message);
        failed = true;
        continue;
      }
      try {
        if (await this.#upsert(namespace, desired, owners)) written++;
      } catch (err) {
        // An API failure, or a Secret the driver may not change (not managed, another type).
        const errorType = err instanceof KubeApiError ? "FailedToWriteSecret" : "SecretNotWritable";
        await fail(errorType, messageOf(err));
        failed = true;
      }
    }
    if (written > 0) {
      this.#options.metrics.syncK8sSecret(spc.provider, written, (this.#clock.now() - started) / 1000);
      log.info("synced secrets", { count: written });
    }
    if (failed) throw new RetryLater();
  }

  /** The pod's owners, or the SPCPS for a pod without any (upstream's patcher). */
  #owners(pod: KubeObject, spcps: Spcps): OwnerReference[] {
    const fromPod = (pod.metadata.ownerReferences ?? []).map(({ apiVersion, kind, name, uid }) => ({
      apiVersion,
      kind,
      name,
      uid,
    }));
    if (fromPod.length > 0) return fromPod;
    return [{
      apiVersion: SPCPS_API_VERSION,
      kind: SPCPS_KIND,
      name: spcps.metadata.name!,
      uid: spcps.metadata.uid!,
    }];
  }

  /** Creates or updates one Secret; true when it wrote. Retries a 409 on a fresh read. */
  #upsert(namespace: string, desired: DesiredSecret, owners: OwnerReference[]): Promise<boolean> {
    const data = sorted(Object.fromEntries(Object.entries(desired.data).map(([k, v]) => [k, base64(v)])));
    return retryOnConflict(async () => {
      const current = await this.#options.api.get<SecretObject>("secrets", namespace, desired.name).catch(
        (err) => {
          if (err instanceof KubeApiError && err.notFound) return undefined;
          throw err;
        },
      );
      if (current === undefined) {
        await this.#options.api.create("secrets", namespace, {
          apiVersion: "v1",
          kind: "Secret",
          metadata: {
            name: desired.name,
            namespace,
            labels: desired.labels,
            annotations: desired.annotations,
            ownerReferences: owners,
          },
          type: desired.type,
          data,
        });
        return true;
      }
      const next = this.#updated(namespace, current, desired, data, owners);
      if (next === undefined) return false;
      await this.#options.api.update("secrets", next);
      return true;
    });
  }

  /** The update `current` needs, or undefined when it already is what `desired` asks for. */
  #updated(
    namespace: string,
    current: SecretObject,
    desired: DesiredSecret,
    wanted: Record<string, string>,
    owners: OwnerReference[],
  ): SecretObject | undefined {
    const data = withControllerKeys(desired.type, current.data ?? {}, wanted);
    const ref = `secret ${namespace}/${desired.name}`;
    const labels = current.metadata.labels ?? {};
    if (labels[MANAGED_LABEL] !== "true") {
      throw new Error(
        `${ref} exists and was not created by the driver (no ${MANAGED_LABEL}=true label); it is left alone`,
      );
    }
    if ((current.type ?? "Opaque") !== desired.type) {
      throw new Error(
        `${ref} has type ${
          current.type ?? "Opaque"
        } but the class asks for ${desired.type}; a Secret's type cannot change, delete the Secret to recreate it`,
      );
    }
    const known = new Set((current.metadata.ownerReferences ?? []).map((r) => r.uid));
    const next: SecretObject = {
      ...current,
      metadata: {
        ...current.metadata,
        labels: { ...labels, ...desired.labels },
        annotations: { ...current.metadata.annotations, ...desired.annotations },
        ownerReferences: [
          ...(current.metadata.ownerReferences ?? []),
          ...owners.filter((o) => !known.has(o.uid)),
        ],
      },
      data,
    };
    const unchanged = sameJson(sorted(current.data ?? {}), data) &&
      sameJson(sorted(labels), sorted(next.metadata.labels!)) &&
      sameJson(sorted(current.metadata.annotations ?? {}), sorted(next.metadata.annotations!)) &&
      next.metadata.ownerReferences!.length === (current.metadata.ownerReferences ?? []).length;
    return unchanged ? undefined : next;
  }
}
