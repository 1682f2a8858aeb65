/**
 * The stand-in's storage: objects keyed by resource/namespace/name, one global monotonically increasing
 * resourceVersion, a bounded history of changes for watches, and the garbage collector's cascade.
 */

import { isRecord } from "../../../lib/json.ts";
import { apiVersionOf, type ResourceType } from "./resources.ts";
import type { Matcher } from "./selectors.ts";
import { alreadyExists, badRequest, conflict, invalid, notFound } from "./status.ts";

/** metadata.ownerReferences[] entry. */
export interface OwnerReference {
  apiVersion: string;
  kind: string;
  name: string;
  uid: string;
  controller?: boolean;
  blockOwnerDeletion?: boolean;
}

/** The metadata fields the stand-in reads or maintains. */
export interface ObjectMeta {
  name?: string;
  generateName?: string;
  namespace?: string;
  uid?: string;
  resourceVersion?: string;
  generation?: number;
  creationTimestamp?: string;
  deletionTimestamp?: string;
  deletionGracePeriodSeconds?: number;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  ownerReferences?: OwnerReference[];
  finalizers?: string[];
  [field: string]: unknown;
}

/** Any Kubernetes object as JSON. */
export interface KubeObject {
  apiVersion?: string;
  kind?: string;
  metadata: ObjectMeta;
  [field: string]: unknown;
}

export type ChangeType = "ADDED" | "MODIFIED" | "DELETED";

/** One write, as kept in the watch history. `previous` is the state before a MODIFIED/DELETED. */
export interface Change {
  rv: number;
  type: ChangeType;
  resource: ResourceType;
  object: KubeObject;
  previous?: KubeObject;
}

/** DeleteOptions fields the stand-in honours. */
export interface DeleteOptions {
  propagationPolicy?: "Background" | "Foreground" | "Orphan";
  preconditions?: { uid?: string; resourceVersion?: string };
}

/** What a delete did: the object is gone, or it waits on finalizers (deletionTimestamp set). */
export interface DeleteResult {
  object: KubeObject;
  removed: boolean;
}

// RFC 1123 subdomain, the rule for the names of every resource served here.
const NAME_PATTERN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const NAME_RULE =
  "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or " +
  "'.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation " +
  "is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
// The alphabet apiserver's generateName suffixes draw from (no vowels, no confusable characters).
const SUFFIX_ALPHABET = "bcdfghjklmnpqrstvwxz2456789";

const now = () => new Date().toISOString().replace(/\.\d{3}Z$/, "Z");

function randomSuffix(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(5));
  return Array.from(bytes, (b) => SUFFIX_ALPHABET[b % SUFFIX_ALPHABET.length]).join("");
}

/** Deep equality of JSON values (key order ignored): an update that changes nothing keeps its resourceVersion. */
function jsonEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (Array.isArray(a) && Array.isArray(b)) {
    return a.length === b.length && a.every((v, i) => jsonEqual(v, b[i]));
  }
  if (isRecord(a) && isRecord(b)) {
    const keys = Object.keys(a);
    return keys.length === Object.keys(b).length &&
      keys.every((k) => Object.hasOwn(b, k) && jsonEqual(a[k], b[k]));
  }
  return false;
}

function keyOf(type: ResourceType, namespace: string | undefined, name: string): string {
  return `${type.group}/${type.plural}/${namespace ?? ""}/${name}`;
}

/** Everything but metadata and status: a change here bumps a custom resource's generation. */
function specOf(object: KubeObject): Record<string, unknown> {
  const { metadata: _m, status: _s, apiVersion: _a, kind: _k, ...rest } = object;
  return rest;
}

/** A copy of a change for a reader; the resource type stays the shared table entry (compared by identity). */
function copyChange(change: Change): Change {
  return { ...change, object: structuredClone(change.object), previous: structuredClone(change.previous) };
}

/** Options of a {@link Store}. */
export interface StoreOptions {
  /** How many changes stay replayable for watches; older resourceVersions get 410 Expired. */
  historyLimit: number;
  /** The resourceVersion of an empty store. */
  initialResourceVersion: number;
}

/** Receives every change as it is committed. */
export type ChangeListener = (change: Change) => void;

interface Entry {
  type: ResourceType;
  object: KubeObject;
}

/** In-memory object storage with Kubernetes write semantics. Every returned object is a copy. */
export class Store {
  #objects = new Map<string, Entry>();
  #rv: number;
  #history: Change[] = [];
  // Every change with rv > #compactedRv is in #history; a watch from an older version has expired.
  #compactedRv: number;
  #listeners = new Set<ChangeListener>();
  #historyLimit: number;

  constructor(options: StoreOptions) {
    this.#rv = options.initialResourceVersion;
    this.#compactedRv = options.initialResourceVersion;
    this.#historyLimit = options.historyLimit;
  }

  /** The latest resourceVersion (of the last write, or the initial one). */
  get resourceVersion(): number {
    return this.#rv;
  }

  /** The oldest resourceVersion a watch can still start from. */
  get oldestWatchableVersion(): number {
    return this.#compactedRv;
  }

  /** Forgets the change history, as a restarted API server's empty watch cache does. */
  compact(): void {
    this.#history = [];
    this.#compactedRv = this.#rv;
  }

  /** Calls `listener` synchronously for each later change; returns the unsubscribe function. */
  subscribe(listener: ChangeListener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Changes of one resource after `rv`, oldest first; undefined when `rv` is older than the history. */
  changesSince(type: ResourceType, rv: number): Change[] | undefined {
    if (rv < this.#compactedRv) return undefined;
    return this.#history.filter((c) => c.rv > rv && c.resource === type).map(copyChange);
  }

  /** The object, or undefined. */
  find(type: ResourceType, namespace: string | undefined, name: string): KubeObject | undefined {
    const found = this.#objects.get(keyOf(type, namespace, name));
    return found === undefined ? undefined : structuredClone(found.object);
  }

  /** The object, or a 404 ApiError. */
  get(type: ResourceType, namespace: string | undefined, name: string): KubeObject {
    const found = this.find(type, namespace, name);
    if (found === undefined) throw notFound(type, name);
    return found;
  }

  /** Objects of a resource in a namespace (all when undefined) that match, sorted by namespace/name. */
  list(type: ResourceType, namespace?: string, match: Matcher = () => true): KubeObject[] {
    const prefix = keyOf(type, namespace, "");
    const prefixAll = `${type.group}/${type.plural}/`;
    return [...this.#objects.entries()]
      .filter(([key]) => key.startsWith(namespace === undefined ? prefixAll : prefix))
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([, entry]) => entry.object)
      .filter((object) => match(object))
      .map((object) => structuredClone(object));
  }

  /** POST: validates, names (generateName), stamps uid/creationTimestamp/resourceVersion and stores. */
  create(type: ResourceType, namespace: string | undefined, body: unknown): KubeObject {
    const object = this.#accept(type, namespace, body);
    const meta = object.metadata;
    if (!meta.name && meta.generateName) meta.name = meta.generateName + randomSuffix();
    if (!meta.name) {
      throw invalid(type, "", "metadata.name", "Required value: name or generateName is required");
    }
    this.#validateName(type, meta.name);
    if (this.#objects.has(keyOf(type, namespace, meta.name))) throw alreadyExists(type, meta.name);
    for (const field of ["resourceVersion", "deletionTimestamp", "deletionGracePeriodSeconds"]) {
      delete meta[field];
    }
    meta.uid = crypto.randomUUID();
    meta.creationTimestamp = now();
    if (type.custom) meta.generation = 1;
    // Like the real pod strategy: a new pod's status is reset to Pending.
    if (type.kind === "Pod" && type.group === "") object.status = { phase: "Pending" };
    return this.#commit(type, "ADDED", object);
  }

  /**
   * PUT: replaces the object. A stale metadata.resourceVersion is a 409 Conflict; an empty one updates
   * unconditionally. With a status subresource, `subresource` says which half of the object may change.
   */
  update(
    type: ResourceType,
    namespace: string | undefined,
    name: string,
    body: unknown,
    subresource?: string,
  ): KubeObject {
    const incoming = this.#accept(type, namespace, body);
    const meta = incoming.metadata;
    if (meta.name !== undefined && meta.name !== name) {
      throw badRequest(`the name of the object (${meta.name}) does not match the name on the URL (${name})`);
    }
    const existing = this.get(type, namespace, name);
    if (meta.resourceVersion && meta.resourceVersion !== existing.metadata.resourceVersion) {
      throw conflict(type, name);
    }
    if (meta.uid && meta.uid !== existing.metadata.uid) {
      throw conflict(
        type,
        name,
        `Precondition failed: UID in precondition: ${meta.uid}, UID in object meta: ${existing.metadata.uid}`,
      );
    }
    let next: KubeObject;
    if (type.statusSubresource && subresource === "status") {
      next = { ...existing, status: incoming.status };
    } else {
      next = incoming;
      if (type.statusSubresource) next.status = existing.status;
      if (next.status === undefined) delete next.status;
      const keep = ["name", "namespace", "uid", "creationTimestamp", "deletionTimestamp", "generation"];
      for (const field of keep) {
        if (existing.metadata[field] === undefined) delete next.metadata[field];
        else next.metadata[field] = existing.metadata[field];
      }
    }
    return this.#replace(type, existing, next);
  }

  /**
   * DELETE: 409 on failed preconditions. With finalizers the object only gets a deletionTimestamp;
   * otherwise it is removed and its dependents are garbage-collected (or orphaned).
   */
  delete(
    type: ResourceType,
    namespace: string | undefined,
    name: string,
    options: DeleteOptions = {},
  ): DeleteResult {
    const existing = this.get(type, namespace, name);
    const { uid, resourceVersion } = options.preconditions ?? {};
    if (uid && uid !== existing.metadata.uid) {
      throw conflict(
        type,
        name,
        `Precondition failed: UID in precondition: ${uid}, UID in object meta: ${existing.metadata.uid}`,
      );
    }
    if (resourceVersion && resourceVersion !== existing.metadata.resourceVersion) {
      throw conflict(
        type,
        name,
        `Precondition failed: ResourceVersion in precondition: ${resourceVersion}, ResourceVersion in object meta: ${existing.metadata.resourceVersion}`,
      );
    }
    if (options.propagationPolicy === "Orphan") this.#orphanDependents(existing.metadata.uid!);
    if ((existing.metadata.finalizers ?? []).length > 0) {
      if (existing.metadata.deletionTimestamp !== undefined) return { object: existing, removed: false };
      const marked = structuredClone(existing);
      marked.metadata.deletionTimestamp = now();
      marked.metadata.deletionGracePeriodSeconds = 0;
      return { object: this.#commit(type, "MODIFIED", marked, existing), removed: false };
    }
    return { object: this.#remove(type, existing), removed: true };
  }

  /**
   * Test set-up: creates or replaces an object as given (status included, no resourceVersion check),
   * keeping uid/creationTimestamp of an existing object unless the new one sets them.
   */
  put(type: ResourceType, object: KubeObject): KubeObject {
    const next = this.#accept(
      type,
      object.metadata?.namespace ?? (type.namespaced ? "default" : undefined),
      object,
    );
    const name = next.metadata.name;
    if (!name) throw badRequest("put: metadata.name is required");
    const existing = this.find(type, next.metadata.namespace, name);
    if (existing === undefined) {
      next.metadata.uid ??= crypto.randomUUID();
      next.metadata.creationTimestamp ??= now();
      if (type.custom) next.metadata.generation ??= 1;
      return this.#commit(type, "ADDED", next);
    }
    next.metadata.uid ??= existing.metadata.uid;
    next.metadata.creationTimestamp ??= existing.metadata.creationTimestamp;
    return this.#replace(type, existing, next);
  }

  /** Normalises a request body: a JSON object of this kind, in this namespace, in storage apiVersion. */
  #accept(type: ResourceType, namespace: string | undefined, body: unknown): KubeObject {
    if (typeof body !== "object" || body === null || Array.isArray(body)) {
      throw badRequest(`the body of the request must be a ${type.kind} object`);
    }
    const object = structuredClone(body) as KubeObject;
    if (object.kind !== undefined && object.kind !== type.kind) {
      throw badRequest(
        `the kind in the body (${object.kind}) does not match the resource kind (${type.kind})`,
      );
    }
    if (
      object.apiVersion !== undefined &&
      !type.versions.some((v) => apiVersionOf(type, v) === object.apiVersion)
    ) {
      throw badRequest(
        `the API version in the data (${object.apiVersion}) does not match the resource (${
          apiVersionOf(type)
        })`,
      );
    }
    object.apiVersion = apiVersionOf(type);
    object.kind = type.kind;
    object.metadata = typeof object.metadata === "object" && object.metadata !== null ? object.metadata : {};
    if (type.namespaced) {
      if (object.metadata.namespace && object.metadata.namespace !== namespace) {
        throw badRequest(
          "the namespace of the provided object does not match the namespace sent on the request",
        );
      }
      object.metadata.namespace = namespace;
    } else {
      delete object.metadata.namespace;
    }
    return object;
  }

  #validateName(type: ResourceType, name: string): void {
    if (name.length > 253) {
      throw invalid(
        type,
        name,
        "metadata.name",
        `Invalid value: "${name}": must be no more than 253 characters`,
      );
    }
    if (!NAME_PATTERN.test(name)) {
      throw invalid(type, name, "metadata.name", `Invalid value: "${name}": ${NAME_RULE}`);
    }
  }

  /** Stores `next` in place of `existing`: no-op writes keep the version; a drained finalizer list deletes. */
  #replace(type: ResourceType, existing: KubeObject, next: KubeObject): KubeObject {
    next.metadata.resourceVersion = existing.metadata.resourceVersion;
    if (type.custom && !jsonEqual(specOf(existing), specOf(next))) {
      next.metadata.generation = (existing.metadata.generation ?? 0) + 1;
    }
    if (jsonEqual(existing, next)) return existing;
    if (next.metadata.deletionTimestamp !== undefined && (next.metadata.finalizers ?? []).length === 0) {
      return this.#remove(type, next);
    }
    return this.#commit(type, "MODIFIED", next, existing);
  }

  #remove(type: ResourceType, object: KubeObject): KubeObject {
    this.#objects.delete(keyOf(type, object.metadata.namespace, object.metadata.name!));
    // The DELETED event carries the object at the resourceVersion of its deletion.
    const gone = this.#commit(type, "DELETED", structuredClone(object), object);
    this.#collectDependents(object.metadata.uid!);
    return gone;
  }

  #commit(type: ResourceType, kind: ChangeType, object: KubeObject, previous?: KubeObject): KubeObject {
    this.#rv++;
    object.metadata.resourceVersion = String(this.#rv);
    if (kind !== "DELETED") {
      this.#objects.set(keyOf(type, object.metadata.namespace, object.metadata.name!), { type, object });
    }
    const change: Change = {
      rv: this.#rv,
      type: kind,
      resource: type,
      object: structuredClone(object),
      previous,
    };
    this.#history.push(change);
    while (this.#history.length > this.#historyLimit) this.#compactedRv = this.#history.shift()!.rv;
    for (const listener of this.#listeners) listener(copyChange(change));
    return structuredClone(object);
  }

  /** Every stored object that lists `uid` among its owners, with its resource type. */
  #dependentsOf(uid: string): Entry[] {
    return [...this.#objects.values()]
      .filter(({ object }) => object.metadata.ownerReferences?.some((ref) => ref.uid === uid))
      .map(({ type, object }) => ({ type, object: structuredClone(object) }));
  }

  /** The garbage collector: drop the dead owner's reference; delete dependents left with no live owner. */
  #collectDependents(uid: string): void {
    const liveUids = new Set([...this.#objects.values()].map(({ object }) => object.metadata.uid));
    for (const { type, object } of this.#dependentsOf(uid)) {
      const current = this.find(type, object.metadata.namespace, object.metadata.name!);
      if (current === undefined) continue; // already removed by an earlier step of the cascade
      const remaining = (current.metadata.ownerReferences ?? []).filter((ref) => ref.uid !== uid);
      if (remaining.some((ref) => liveUids.has(ref.uid))) {
        const next = structuredClone(current);
        next.metadata.ownerReferences = remaining;
        this.#replace(type, current, next);
      } else {
        this.delete(type, current.metadata.namespace, current.metadata.name!);
      }
    }
  }

  /** propagationPolicy=Orphan: dependents lose their reference to the owner and stay. */
  #orphanDependents(uid: string): void {
    for (const { type, object } of this.#dependentsOf(uid)) {
      const next = structuredClone(object);
      next.metadata.ownerReferences = object.metadata.ownerReferences!.filter((ref) => ref.uid !== uid);
      if (next.metadata.ownerReferences.length === 0) delete next.metadata.ownerReferences;
      this.#replace(type, object, next);
    }
  }
}
