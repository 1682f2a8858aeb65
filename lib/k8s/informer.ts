/**
 * A list-then-watch cache of one resource (client-go's reflector + store, reduced to what the driver
 * needs). The loop never depends on a transport noticing a dropped stream: each watch asks the server to
 * end it after `watchTimeoutSeconds` and gives up on a silent stream, and stop() cancels the stream
 * itself. A watch that ends is resumed from the last resourceVersion seen; a 410 Expired (e.g. after an
 * API server restart) re-lists, and the re-list reports every difference, so no change is lost.
 *
 * Like client-go's informers with a transform, each object is reduced to the fields the driver reads
 * before it is cached (`transform`): a cluster's classes carry managedFields, last-applied annotations
 * and statuses that would otherwise stay in the driver's heap for as long as the class exists.
 */
import { messageOf } from "../errors.ts";
import type { Logger } from "../log.ts";
import { KubeApiError, type KubeClient, type KubeObject, type ResourceName, type WatchEvent } from "./api.ts";
import { sleep } from "../sleep.ts";
import { KUBERNETES_DEFAULTS } from "./defaults.ts";

/** What changed in the cache. */
export type ChangeType = "added" | "updated" | "deleted";

/** Options of an {@link Informer}. */
export interface InformerOptions {
  api: KubeClient;
  resource: ResourceName;
  labelSelector?: string;
  log: Logger;
  /** Called for every change of the cache, after it is applied (with the transformed object). */
  onChange?: (type: ChangeType, object: KubeObject) => void;
  /** Reduces each listed or watched object to what is kept (default: kept whole). */
  transform?: (object: KubeObject) => KubeObject;
  /** The server ends each watch after this long (unset: defaults.ts; client-go uses 5–10 min). */
  watchTimeoutSeconds?: number;
  /** Delay after a failed list or watch, doubled per failure up to `maxBackoffMs`. */
  initialBackoffMs?: number;
  maxBackoffMs?: number;
}

/** `namespace/name` */
export function objectKey(namespace: string | undefined, name: string | undefined): string {
  return `${namespace ?? ""}/${name ?? ""}`;
}

const keyOf = (o: KubeObject) => objectKey(o.metadata.namespace, o.metadata.name);

/**
 * What readers of an informer see: its cache. The SPC source, the SPCPS recorder and the Secret sync take
 * this, so tests hand them a map (tests/support/kube-twins.ts) instead of a list-and-watch loop.
 */
export interface ObjectCache<T extends KubeObject = KubeObject> {
  /** The cached object, if any. */
  get(namespace: string, name: string): T | undefined;
  /** Every cached object. */
  list(): T[];
}

/** Objects per list request (client-go's pager default). */
const LIST_PAGE_SIZE = 500;

/** Signals a 410 from a watch: the loop re-lists. */
class Expired extends Error {}

/** A cache of the objects of one resource, kept current by list and watch. */
export class Informer<T extends KubeObject = KubeObject> implements ObjectCache<T> {
  readonly #options: InformerOptions;
  readonly #transform: (object: KubeObject) => T;
  readonly #objects = new Map<string, T>();
  readonly #abort = new AbortController();
  #resourceVersion: string | undefined;
  #loop: Promise<void> | undefined;
  #synced = false;
  #syncWaiters: (() => void)[] = [];

  constructor(options: InformerOptions) {
    this.#options = options;
    const transform = options.transform ?? ((o: KubeObject) => o);
    this.#transform = (o) => transform(o) as T;
  }

  /** Starts listing and watching in the background. */
  start(): void {
    this.#loop ??= this.#run();
  }

  /** True once the first list has filled the cache. */
  get synced(): boolean {
    return this.#synced;
  }

  /** Resolves true once the first list has completed, or false after `timeoutMs`. */
  waitForSync(timeoutMs: number): Promise<boolean> {
    if (this.#synced) return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.#syncWaiters = this.#syncWaiters.filter((w) => w !== done);
        resolve(false);
      }, timeoutMs);
      const done = () => {
        clearTimeout(timer);
        resolve(true);
      };
      this.#syncWaiters.push(done);
    });
  }

  /** The cached object, if any. */
  get(namespace: string, name: string): T | undefined {
    return this.#objects.get(objectKey(namespace, name));
  }

  /** Every cached object. */
  list(): T[] {
    return [...this.#objects.values()];
  }

  /** Stops the loop and waits for it to end. */
  async stop(): Promise<void> {
    this.#abort.abort();
    for (const waiter of this.#syncWaiters.splice(0)) waiter();
    await this.#loop;
  }

  async #run(): Promise<void> {
    const {
      initialBackoffMs = KUBERNETES_DEFAULTS.informerBackoffMs.initial,
      maxBackoffMs = KUBERNETES_DEFAULTS.informerBackoffMs.max,
    } = this.#options;
    const signal = this.#abort.signal;
    const log = this.#options.log.with({ resource: this.#options.resource });
    let backoff = initialBackoffMs;
    while (!signal.aborted) {
      try {
        if (this.#resourceVersion === undefined) await this.#relist();
        await this.#watch();
        backoff = initialBackoffMs;
      } catch (err) {
        if (signal.aborted) break;
        if (err instanceof Expired) {
          log.info("watch expired; listing again", {}, 2);
          this.#resourceVersion = undefined;
          continue;
        }
        log.warn("list or watch failed; retrying", { error: messageOf(err), retryInMs: backoff });
        await sleep(backoff, signal);
        backoff = Math.min(backoff * 2, maxBackoffMs);
      }
    }
  }

  /**
   * Lists in pages of {@link LIST_PAGE_SIZE}, as client-go's reflector does: only one page of whole
   * objects is parsed at a time, so a cluster's thousands of classes never sit in the heap at once.
   */
  async #relist(): Promise<void> {
    const seen = new Set<string>();
    let token: string | undefined;
    let resourceVersion: string | undefined;
    do {
      const page = await this.#options.api.list<T>(this.#options.resource, {
        labelSelector: this.#options.labelSelector,
        limit: LIST_PAGE_SIZE,
        continue: token,
        signal: this.#abort.signal,
      });
      for (const item of page.items) this.#relisted(this.#transform(item), seen);
      token = page.metadata.continue || undefined;
      resourceVersion = page.metadata.resourceVersion;
    } while (token !== undefined);
    for (const [key, old] of [...this.#objects]) {
      if (seen.has(key)) continue;
      this.#objects.delete(key);
      this.#emit("deleted", old);
    }
    this.#resourceVersion = resourceVersion ?? "";
    if (!this.#synced) {
      this.#synced = true;
      for (const waiter of this.#syncWaiters.splice(0)) waiter();
    }
  }

  /** Caches one listed object and reports it when it is new or changed. */
  #relisted(object: T, seen: Set<string>): void {
    const key = keyOf(object);
    seen.add(key);
    const old = this.#objects.get(key);
    this.#objects.set(key, object);
    if (old === undefined) this.#emit("added", object);
    else if (old.metadata.resourceVersion !== object.metadata.resourceVersion) this.#emit("updated", object);
  }

  async #watch(): Promise<void> {
    const timeoutSeconds = this.#options.watchTimeoutSeconds ?? KUBERNETES_DEFAULTS.watchTimeoutSeconds;
    let expired = false;
    await this.#options.api.watch(this.#options.resource, {
      labelSelector: this.#options.labelSelector,
      resourceVersion: this.#resourceVersion,
      timeoutSeconds,
      // A real API server sends a bookmark every minute and 2 s before its timeout, so a stream silent
      // for longer is dead: the fetch transport (undici on Deno) does not report a connection the server
      // closed, as a restarting API server does, and the stream would otherwise hang until then.
      inactivityMs: (Math.min(timeoutSeconds, 60) + 15) * 1000,
    }, (event) => {
      if (expired) return;
      if (event.type === "ERROR") {
        if (event.object.code === 410) expired = true;
        else {throw new KubeApiError(
            event.object.code ?? 0,
            event.object.reason ?? "",
            event.object.message ?? "",
          );}
        return;
      }
      this.#apply(event);
    }, this.#abort.signal);
    if (expired) throw new Expired();
  }

  #apply(event: WatchEvent): void {
    const version = event.object.metadata?.resourceVersion;
    if (version) this.#resourceVersion = version;
    if (event.type === "BOOKMARK") return;
    const object = this.#transform(event.object);
    const key = keyOf(object);
    if (event.type === "DELETED") {
      if (this.#objects.delete(key)) this.#emit("deleted", object);
      return;
    }
    const existed = this.#objects.has(key);
    this.#objects.set(key, object);
    this.#emit(existed ? "updated" : "added", object);
  }

  #emit(type: ChangeType, object: T): void {
    try {
      this.#options.onChange?.(type, object);
    } catch (err) {
      this.#options.log.error("an informer handler failed", { error: messageOf(err) });
    }
  }
}
