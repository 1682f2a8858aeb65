/**
 * SecretProviderClasses from the Kubernetes API: answered from a cluster-wide informer, so a burst of
 * publishes does not become a burst of GETs. A cache miss (a class created a moment ago, or the cache
 * not synced yet) falls back to one GET per class, shared by every publish waiting for it.
 */
import { notFound } from "../errors.ts";
import { toSecretProviderClass } from "../spc/parse.ts";
import type { SecretProviderClass, SpcSource } from "../volume/ports.ts";
import { KubeApiError, type KubeClient, type KubeObject } from "./api.ts";
import { type ObjectCache, objectKey } from "./informer.ts";

/**
 * The informer's transform: what {@link ClusterSpcSource} and the Secret sync read of a class (identity,
 * `spec`). managedFields, annotations (kubectl's last-applied copy of the whole object) and status are
 * dropped before the object is cached.
 */
export function trimSpc(object: KubeObject): KubeObject {
  const { name, namespace, uid, resourceVersion } = object.metadata;
  return {
    apiVersion: object.apiVersion,
    kind: object.kind,
    metadata: { name, namespace, uid, resourceVersion },
    spec: object.spec,
  };
}

/** Looks SecretProviderClasses up in the pod's namespace, cache first. */
export class ClusterSpcSource implements SpcSource {
  readonly #inFlight = new Map<string, Promise<KubeObject>>();

  constructor(private readonly api: KubeClient, private readonly cache: ObjectCache) {}

  async get(namespace: string, name: string): Promise<SecretProviderClass> {
    const object = this.cache.get(namespace, name) ?? await this.#fetch(namespace, name);
    return toSecretProviderClass(object, `secretproviderclass ${namespace}/${name}`);
  }

  /** One GET per class at a time; concurrent callers share its answer. */
  #fetch(namespace: string, name: string): Promise<KubeObject> {
    const key = objectKey(namespace, name);
    let pending = this.#inFlight.get(key);
    if (pending === undefined) {
      pending = this.api.get("spcs", namespace, name).catch((err) => {
        if (err instanceof KubeApiError && err.notFound) {
          throw notFound(`secretproviderclass ${name} not found in namespace ${namespace}`);
        }
        throw err;
      }).finally(() => this.#inFlight.delete(key));
      this.#inFlight.set(key, pending);
    }
    return pending;
  }
}
