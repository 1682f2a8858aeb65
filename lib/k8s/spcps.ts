/**
 * SecretProviderClassPodStatus: one object per mounted (pod, class), named `<pod>-<namespace>-<class>`,
 * labelled with the node, owned by the pod (so garbage collection removes it with the pod), recording
 * the target path and the object versions the provider returned.
 *
 * Unpublish: the driver deletes nothing (the pod's garbage collection does), but an unmounted volume is
 * not left claiming `mounted: true`: the object whose `status.targetPath` is the unmounted path is
 * updated to `mounted: false` (status otherwise kept). A pod being deleted may have lost its object
 * already; that is not an error.
 */
import { sameJson } from "../json.ts";
import type { Logger } from "../log.ts";
import type { ObjectVersion, Published } from "../volume/ports.ts";
import { KubeApiError, type KubeClient, type KubeObject, retryOnConflict } from "./api.ts";
import type { ObjectCache } from "./informer.ts";
import { SPC_GROUP } from "../spc/parse.ts";

/** The label that ties an SPCPS to the node that mounted it. */
export const NODE_LABEL = "internal.secrets-store.csi.k8s.io/node-name";
export const SPCPS_API_VERSION = `${SPC_GROUP}/v1`;
export const SPCPS_KIND = "SecretProviderClassPodStatus";

/** SecretProviderClassPodStatus.status */
export interface SpcpsStatus {
  podName: string;
  secretProviderClassName: string;
  mounted: boolean;
  targetPath: string;
  objects: ObjectVersion[];
}

/** A SecretProviderClassPodStatus object. */
export interface Spcps extends KubeObject {
  status?: SpcpsStatus;
}

/**
 * The informer's transform: what the recorder and the Secret sync read of this node's objects (identity,
 * the node label, owners, status). Writes always start from a fresh GET, never from the cache.
 */
export function trimSpcps(object: KubeObject): Spcps {
  const { name, namespace, uid, resourceVersion, labels, ownerReferences } = object.metadata;
  return {
    apiVersion: object.apiVersion,
    kind: object.kind,
    metadata: { name, namespace, uid, resourceVersion, labels, ownerReferences },
    status: (object as Spcps).status,
  };
}

/** `<pod>-<namespace>-<class>`, as upstream names it. */
export function spcpsName(pod: string, namespace: string, spc: string): string {
  return `${pod}-${namespace}-${spc}`;
}

/** The object a successful mount should leave, as upstream writes it (objects sorted by id). */
export function desiredSpcps(published: Published, nodeId: string): Spcps {
  const pod = published.pod;
  const objects = published.objectVersions.map(({ id, version }) => ({ id, version }))
    .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  return {
    apiVersion: SPCPS_API_VERSION,
    kind: SPCPS_KIND,
    metadata: {
      name: spcpsName(pod.name, pod.namespace, published.spc.name),
      namespace: pod.namespace,
      labels: { [NODE_LABEL]: nodeId },
      ownerReferences: [{ apiVersion: "v1", kind: "Pod", name: pod.name, uid: pod.uid }],
    },
    status: {
      podName: pod.name,
      secretProviderClassName: published.spc.name,
      mounted: true,
      targetPath: published.targetPath,
      objects,
    },
  };
}

/** True when `current` already says what `desired` says (label, owner, status). */
function upToDate(current: Spcps, desired: Spcps): boolean {
  return current.metadata.labels?.[NODE_LABEL] === desired.metadata.labels![NODE_LABEL] &&
    sameJson(current.metadata.ownerReferences, desired.metadata.ownerReferences) &&
    sameJson(current.status, desired.status);
}

/** Writes SecretProviderClassPodStatus objects for this node's mounts. */
export class SpcpsRecorder {
  /** targetPath → namespace/name of the object written for it, so unpublish finds it without a list. */
  readonly #byTarget = new Map<string, { namespace: string; name: string }>();

  constructor(
    private readonly api: KubeClient,
    private readonly nodeId: string,
    /** This node's SPCPS objects (the sync controller's informer). */
    private readonly cache: ObjectCache<Spcps>,
    private readonly log: Logger,
  ) {}

  /**
   * Creates or updates the object for a successful mount or rotation. A rotation that changed nothing
   * writes nothing when the cache already shows the same object. Returns true when it wrote.
   */
  async recordMounted(published: Published): Promise<boolean> {
    const desired = desiredSpcps(published, this.nodeId);
    const { namespace, name } = desired.metadata as { namespace: string; name: string };
    this.#byTarget.set(published.targetPath, { namespace, name });
    const cached = this.cache.get(namespace, name);
    if (!published.changed && cached && upToDate(cached, desired)) return false;
    try {
      await this.api.create("spcps", namespace, desired);
      return true;
    } catch (err) {
      if (!(err instanceof KubeApiError && err.conflict)) throw err;
    }
    // It exists: from an earlier mount, or from the same pod name on another node (a StatefulSet pod
    // that moved). Take it over: this node's label, the current pod as owner, this mount's status.
    this.log.info("secret provider class pod status already exists, updating it", {
      spcps: `${namespace}/${name}`,
    }, 2);
    await this.#update(namespace, name, (current) => ({
      ...current,
      metadata: {
        ...current.metadata,
        labels: { ...current.metadata.labels, [NODE_LABEL]: this.nodeId },
        ownerReferences: desired.metadata.ownerReferences,
      },
      status: desired.status,
    }));
    return true;
  }

  /** Sets `mounted: false` on the object recorded for `targetPath`, if there is one. */
  async recordUnmounted(targetPath: string): Promise<void> {
    const ref = this.#byTarget.get(targetPath) ?? this.#findByTarget(targetPath);
    this.#byTarget.delete(targetPath);
    if (ref === undefined) return;
    try {
      await this.#update(
        ref.namespace,
        ref.name,
        (current) =>
          current.status?.targetPath === targetPath && current.status.mounted
            ? { ...current, status: { ...current.status, mounted: false } }
            : undefined,
      );
    } catch (err) {
      // Deleted with its pod already: nothing claims the volume is mounted.
      if (!(err instanceof KubeApiError && err.notFound)) throw err;
    }
  }

  /** After a restart the map is empty: the cache knows this node's objects. */
  #findByTarget(targetPath: string): { namespace: string; name: string } | undefined {
    const found = this.cache.list().find((o) => o.status?.targetPath === targetPath);
    return found && { namespace: found.metadata.namespace!, name: found.metadata.name! };
  }

  /** Read, change, write; on 409 Conflict read again and retry. `change` returns undefined for "no write". */
  #update(namespace: string, name: string, change: (current: Spcps) => Spcps | undefined): Promise<void> {
    return retryOnConflict(async () => {
      const next = change(await this.api.get<Spcps>("spcps", namespace, name));
      if (next !== undefined) await this.api.update("spcps", next);
    });
  }
}
