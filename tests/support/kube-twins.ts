/**
 * In-memory twins of the Kubernetes side's ports, for unit tests that need no root, no processes and no
 * HTTP: {@link MemoryKube} (the {@link KubeClient} the driver talks through), {@link MemoryCache} (an
 * informer's cache), {@link MemoryReader} and {@link MemoryVolumes} (what the Secret sync reads), metrics
 * and a logger that remember. The clock and the volume side's twins (the provider port among them) are in
 * twins.ts. tests/integration/twins_contract_test.ts runs the same calls on a twin and on the real part.
 */
import type { Fields, Logger } from "../../lib/log.ts";
import { createLogger } from "../../lib/log.ts";
import {
  API_CALLS,
  KubeApiError,
  type KubeClient,
  type KubeList,
  type KubeObject,
  type ListOptions,
  type ResourceName,
  RESOURCES,
  type WatchEvent,
  type WatchOptions,
} from "../../lib/k8s/api.ts";
import { type ObjectCache, objectKey } from "../../lib/k8s/informer.ts";
import type { MountedReader } from "../../lib/k8s/secret-sync.ts";
import type { MountedVolumes, ProviderFile } from "../../lib/volume/ports.ts";
import { RecordingMetrics } from "./twins.ts";

type Verb = "get" | "list" | "watch" | "create" | "update";

/** One call a {@link MemoryKube} received. */
export interface KubeCall {
  verb: Verb;
  res: ResourceName;
  namespace?: string;
  name?: string;
}

interface Watcher {
  res: ResourceName;
  namespace?: string;
  match: (o: KubeObject) => boolean;
  onEvent: (event: WatchEvent) => void;
  end: () => void;
}

/** `a=b,c=d` (equality terms only: all the driver sends). */
function labelMatcher(selector: string | undefined): (o: KubeObject) => boolean {
  const terms = (selector ?? "").split(",").filter((t) => t !== "").map((t) => t.split("="));
  return (o) => terms.every(([k, v]) => o.metadata.labels?.[k] === v);
}

/**
 * A {@link KubeClient} on maps: objects get a uid and a resourceVersion, a create of an existing name and
 * an update with a stale resourceVersion fail with 409 as the API server's do, a missing object is 404,
 * and watches see every change after the resourceVersion they start from (410 Expired once `compact()`
 * dropped it). Like KubeApi it refuses a call the driver does not make (not in
 * API_CALLS). `failNext` injects a failure; `calls` records every call.
 */
export class MemoryKube implements KubeClient {
  readonly calls: KubeCall[] = [];
  readonly #objects = new Map<ResourceName, Map<string, KubeObject>>();
  readonly #faults: { verb: Verb; res: ResourceName; error: Error }[] = [];
  readonly #watchers = new Set<Watcher>();
  /** Every change, for watches that start from an older resourceVersion; `compact()` drops it. */
  #history: { version: number; res: ResourceName; type: WatchEvent["type"]; object: KubeObject }[] = [];
  /** Watches from a resourceVersion below this get 410 Expired. */
  #oldest = 1;
  #version = 1;

  /** Stores `object` as the server would (uid, resourceVersion) without recording a call; returns it. */
  put<T extends KubeObject>(res: ResourceName, object: T): T {
    const stored = structuredClone(object);
    const key = objectKey(stored.metadata.namespace, stored.metadata.name);
    const existed = this.#table(res).has(key);
    stored.metadata.uid ??= crypto.randomUUID();
    stored.metadata.resourceVersion = String(++this.#version);
    this.#table(res).set(key, stored);
    this.#notify(res, existed ? "MODIFIED" : "ADDED", stored);
    return structuredClone(stored);
  }

  /** Removes an object (as garbage collection would). */
  remove(res: ResourceName, namespace: string, name: string): void {
    const key = objectKey(namespace, name);
    const object = this.#table(res).get(key);
    if (object === undefined) return;
    this.#table(res).delete(key);
    this.#notify(res, "DELETED", {
      ...object,
      metadata: { ...object.metadata, resourceVersion: String(++this.#version) },
    });
  }

  /** The stored object, if any (a copy). */
  object<T extends KubeObject = KubeObject>(
    res: ResourceName,
    namespace: string,
    name: string,
  ): T | undefined {
    const object = this.#table(res).get(objectKey(namespace, name));
    return object && structuredClone(object) as T;
  }

  /** Every stored object of `res` (copies), in creation order; not a call. */
  objects<T extends KubeObject = KubeObject>(res: ResourceName): T[] {
    return [...this.#table(res).values()].map((o) => structuredClone(o) as T);
  }

  /** The next `verb` on `res` fails with `error` (a KubeApiError, say) instead of running. */
  failNext(verb: Verb, res: ResourceName, error: Error): void {
    this.#faults.push({ verb, res, error });
  }

  /** Calls of `verb` (on `res`) so far. */
  count(verb: Verb, res?: ResourceName): number {
    return this.calls.filter((c) => c.verb === verb && (res === undefined || c.res === res)).length;
  }

  /** Forgets the change history, as etcd compaction does: a watch from an older resourceVersion gets 410. */
  compact(): void {
    this.#history = [];
    this.#oldest = this.#version;
  }

  /** Ends every open watch, as a server does when a watch times out. */
  endWatches(): void {
    for (const watcher of [...this.#watchers]) watcher.end();
  }

  get<T extends KubeObject = KubeObject>(res: ResourceName, namespace: string, name: string): Promise<T> {
    return this.#run({ verb: "get", res, namespace, name }, () => {
      const found = this.object<T>(res, namespace, name);
      if (found === undefined) {
        throw new KubeApiError(
          404,
          "NotFound",
          `could not get ${RESOURCES[res].singular} ${namespace}/${name}: ${
            RESOURCES[res].plural
          } "${name}" not found (HTTP 404 NotFound)`,
        );
      }
      return found;
    });
  }

  list<T extends KubeObject = KubeObject>(
    res: ResourceName,
    options: ListOptions = {},
  ): Promise<KubeList<T>> {
    return this.#run({ verb: "list", res, namespace: options.namespace }, () => {
      const match = labelMatcher(options.labelSelector);
      const all = [...this.#table(res).values()]
        .filter((o) => options.namespace === undefined || o.metadata.namespace === options.namespace)
        .filter(match);
      // Pages as the API server does: `continue` is the offset of the next page.
      const start = Number(options.continue ?? "0");
      const end = options.limit ? start + options.limit : all.length;
      const items = all.slice(start, end).map((o) => structuredClone(o) as T);
      const next = end < all.length ? String(end) : undefined;
      return { metadata: { resourceVersion: String(this.#version), continue: next }, items };
    });
  }

  create<T extends KubeObject = KubeObject>(
    res: ResourceName,
    namespace: string,
    body: KubeObject,
  ): Promise<T> {
    const name = body.metadata.name ??
      `${body.metadata.generateName ?? ""}${crypto.randomUUID().slice(0, 5)}`;
    return this.#run({ verb: "create", res, namespace, name }, () => {
      if (this.#table(res).has(objectKey(namespace, name))) {
        throw new KubeApiError(
          409,
          "AlreadyExists",
          `could not create ${RESOURCES[res].singular} ${namespace}/${name}: ${
            RESOURCES[res].plural
          } "${name}" already exists (HTTP 409 AlreadyExists)`,
        );
      }
      const { uid: _uid, resourceVersion: _rv, ...metadata } = body.metadata;
      return this.put(res, { ...body, metadata: { ...metadata, name, namespace } }) as T;
    });
  }

  update<T extends KubeObject = KubeObject>(res: ResourceName, body: KubeObject): Promise<T> {
    const { namespace = "", name = "" } = body.metadata;
    return this.#run({ verb: "update", res, namespace, name }, () => {
      const current = this.#table(res).get(objectKey(namespace, name));
      const what = `${RESOURCES[res].singular} ${namespace}/${name}`;
      if (current === undefined) {
        throw new KubeApiError(404, "NotFound", `could not update ${what}: not found (HTTP 404 NotFound)`);
      }
      const sent = body.metadata.resourceVersion;
      if (sent !== undefined && sent !== current.metadata.resourceVersion) {
        throw new KubeApiError(
          409,
          "Conflict",
          `could not update ${what}: the object has been modified (HTTP 409 Conflict)`,
        );
      }
      return this.put(res, { ...body, metadata: { ...body.metadata, uid: current.metadata.uid } }) as T;
    });
  }

  async watch(
    res: ResourceName,
    options: WatchOptions,
    onEvent: (event: WatchEvent) => void,
    signal: AbortSignal,
  ): Promise<void> {
    await this.#run({ verb: "watch", res, namespace: options.namespace }, () => undefined);
    if (signal.aborted) return;
    const from = options.resourceVersion ? Number(options.resourceVersion) : undefined;
    if (from !== undefined && from < this.#oldest) {
      const gone = {
        metadata: {},
        code: 410,
        reason: "Expired",
        message: `too old resource version: ${from}`,
      };
      onEvent({ type: "ERROR", object: gone });
      return;
    }
    await new Promise<void>((resolve) => {
      const watcher: Watcher = {
        res,
        namespace: options.namespace,
        match: labelMatcher(options.labelSelector),
        onEvent,
        end: () => {
          this.#watchers.delete(watcher);
          signal.removeEventListener("abort", watcher.end);
          resolve();
        },
      };
      // The changes after `from` first, as the server replays them, then the live ones.
      for (const change of this.#history) {
        if (
          from !== undefined && change.version > from && this.#matches(watcher, change.res, change.object)
        ) {
          onEvent({ type: change.type, object: structuredClone(change.object) });
        }
      }
      this.#watchers.add(watcher);
      signal.addEventListener("abort", watcher.end, { once: true });
    });
  }

  #table(res: ResourceName): Map<string, KubeObject> {
    let table = this.#objects.get(res);
    if (table === undefined) this.#objects.set(res, table = new Map());
    return table;
  }

  #matches(w: Watcher, res: ResourceName, object: KubeObject): boolean {
    return w.res === res && w.match(object) &&
      (w.namespace === undefined || w.namespace === object.metadata.namespace);
  }

  #notify(res: ResourceName, type: WatchEvent["type"], object: KubeObject): void {
    this.#history.push({ version: this.#version, res, type, object: structuredClone(object) });
    for (const w of this.#watchers) {
      if (this.#matches(w, res, object)) w.onEvent({ type, object: structuredClone(object) });
    }
  }

  /** Records the call, checks it is one the driver makes, applies an injected fault, then runs it. */
  async #run<T>(call: KubeCall, body: () => T): Promise<T> {
    this.calls.push(call);
    const allowed = API_CALLS.find((c) => c.resource === RESOURCES[call.res].plural)?.verbs ?? [];
    if (!allowed.includes(call.verb)) {
      throw new Error(`the driver does not ${call.verb} ${RESOURCES[call.res].plural}: add it to API_CALLS`);
    }
    await Promise.resolve(); // answers arrive later, as over the network
    const fault = this.#faults.findIndex((f) => f.verb === call.verb && f.res === call.res);
    if (fault >= 0) throw this.#faults.splice(fault, 1)[0].error;
    return body();
  }
}

/** An informer's cache as a map ({@link ObjectCache}). */
export class MemoryCache<T extends KubeObject = KubeObject> implements ObjectCache<T> {
  readonly #objects = new Map<string, T>();

  constructor(objects: T[] = []) {
    for (const o of objects) this.put(o);
  }

  put(object: T): void {
    this.#objects.set(objectKey(object.metadata.namespace, object.metadata.name), object);
  }

  remove(namespace: string, name: string): void {
    this.#objects.delete(objectKey(namespace, name));
  }

  get(namespace: string, name: string): T | undefined {
    return this.#objects.get(objectKey(namespace, name));
  }

  list(): T[] {
    return [...this.#objects.values()];
  }
}

/** What each target directory shows ({@link MountedReader}); an Error entry makes the read fail. */
export class MemoryReader implements MountedReader {
  readonly payloads = new Map<string, ProviderFile[] | Error>();
  readonly reads: string[] = [];

  /** Puts UTF-8 files on `targetDir`. */
  show(targetDir: string, files: Record<string, string>): void {
    const encoder = new TextEncoder();
    this.payloads.set(
      targetDir,
      Object.entries(files).map(([path, text]) => ({ path, mode: 0o644, contents: encoder.encode(text) })),
    );
  }

  read(targetDir: string): Promise<ProviderFile[] | null> {
    this.reads.push(targetDir);
    const payload = this.payloads.get(targetDir);
    if (payload instanceof Error) return Promise.reject(payload);
    return Promise.resolve(payload ?? null);
  }
}

/** The volumes "this driver mounted" ({@link MountedVolumes}): target path → pod uid. */
export class MemoryVolumes implements MountedVolumes {
  readonly #volumes = new Map<string, string>();

  mount(targetPath: string, podUid: string): void {
    this.#volumes.set(targetPath, podUid);
  }

  unmount(targetPath: string): void {
    this.#volumes.delete(targetPath);
  }

  podUid(targetPath: string): string | undefined {
    return this.#volumes.get(targetPath);
  }
}

/** RecordingMetrics that also keep the Secret sync calls as values, for assertions on them. */
export class SyncMetrics extends RecordingMetrics {
  readonly synced: { provider: string; count: number }[] = [];
  readonly errors: { provider: string; errorType: string }[] = [];
  override syncK8sSecret(provider: string, count: number, seconds: number): void {
    super.syncK8sSecret(provider, count, seconds);
    this.synced.push({ provider, count });
  }
  override syncK8sSecretError(provider: string, errorType: string): void {
    super.syncK8sSecretError(provider, errorType);
    this.errors.push({ provider, errorType });
  }
}

/** A JSON logger whose lines are kept, parsed. */
export function recordingLogger(): { log: Logger; lines: (Fields & { level: string; message: string })[] } {
  const lines: (Fields & { level: string; message: string })[] = [];
  const log = createLogger({ json: true, verbosity: 5, sink: (line) => lines.push(JSON.parse(line)) });
  return { log, lines };
}

/** Lets every pending promise callback run (the twins answer on the microtask queue). */
export async function settle(): Promise<void> {
  for (let i = 0; i < 50; i++) await Promise.resolve();
  await new Promise((resolve) => setTimeout(resolve, 0));
}
