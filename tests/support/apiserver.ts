/**
 * A Kubernetes API-server stand-in for tests: real HTTP on 127.0.0.1 with the REST semantics of the
 * resources the driver uses (see apiserver/resources.ts), watches, garbage collection, a request log and
 * fault injection. Tests talk to it with @kubernetes/client-node exactly as the driver does.
 *
 * ```ts
 * await using server = await startApiServer();
 * const kc = server.kubeConfig();
 * server.put({ apiVersion: "v1", kind: "Secret", metadata: { name: "s", namespace: "default" } });
 * ```
 */

import { KubeConfig } from "@kubernetes/client-node";
import { handle, type HandlerContext, jsonResponse } from "./apiserver/handler.ts";
import { findResource, type ResourceType } from "./apiserver/resources.ts";
import { parseLabelSelector } from "./apiserver/selectors.ts";
import { failure } from "./apiserver/status.ts";
import { type DeleteOptions, type KubeObject, Store } from "./apiserver/store.ts";
import type { WatchHandle } from "./apiserver/watch.ts";

export type { KubeObject, ObjectMeta, OwnerReference } from "./apiserver/store.ts";
export type { Status } from "./apiserver/status.ts";
export { SECRETS_STORE_GROUP } from "./apiserver/resources.ts";

/** Options of {@link startApiServer}. */
export interface ApiServerOptions {
  /** Interval of BOOKMARK events on watches that allow them (default 1000 ms; the real server: ~1 min). */
  bookmarkIntervalMs?: number;
  /** Changes kept for watches to replay; older resourceVersions get 410 Expired (default 1000). */
  historyLimit?: number;
  /** resourceVersion of the empty store (default 1). */
  initialResourceVersion?: number;
}

/** One logged request. */
export interface RequestRecord {
  method: string;
  /** The URL path, e.g. /api/v1/namespaces/default/secrets/x. */
  path: string;
  query: Record<string, string>;
  /** True for ?watch=true|1. */
  watch: boolean;
  contentType?: string;
  authorization?: string;
}

/** Selects requests in the log or for fault injection; every given field must match. */
export interface RequestFilter {
  method?: string;
  /** Exact path, or a pattern tested against it. */
  path?: string | RegExp;
  watch?: boolean;
}

/** How a paused server treats requests: hold them until resume(), or answer 503 at once. */
export type PauseMode = "hang" | "fail";

function matches(record: RequestRecord, filter: RequestFilter = {}): boolean {
  if (filter.method !== undefined && filter.method.toUpperCase() !== record.method) return false;
  if (filter.watch !== undefined && filter.watch !== record.watch) return false;
  if (typeof filter.path === "string") return filter.path === record.path;
  return filter.path === undefined || filter.path.test(record.path);
}

interface Fault {
  remaining: number;
  status: number;
  filter?: RequestFilter;
}

interface Waiter {
  filter?: RequestFilter;
  resolve: (record: RequestRecord) => void;
  reject: (err: Error) => void;
}

const unavailable = () =>
  failure(503, "the server is currently unable to handle the request", "ServiceUnavailable");

/** A running stand-in. Close it at the end of every test (`await using` does). */
export class ApiServer {
  /** Added to every request before it is answered (watch streams included). */
  delayMs = 0;
  readonly #store: Store;
  readonly #bookmarkIntervalMs: number;
  #server: Deno.HttpServer<Deno.NetAddr> | undefined;
  #port = 0;
  #requests: RequestRecord[] = [];
  #waiters = new Set<Waiter>();
  #faults: Fault[] = [];
  #pause: PauseMode | undefined;
  #held = new Set<() => void>();
  #watches = new Set<WatchHandle>();

  private constructor(options: ApiServerOptions) {
    this.#store = new Store({
      historyLimit: options.historyLimit ?? 1000,
      initialResourceVersion: options.initialResourceVersion ?? 1,
    });
    this.#bookmarkIntervalMs = options.bookmarkIntervalMs ?? 1000;
  }

  /** Starts a server on an ephemeral port of 127.0.0.1. */
  static async start(options: ApiServerOptions = {}): Promise<ApiServer> {
    const server = new ApiServer(options);
    await server.#listen(0);
    return server;
  }

  /** http://127.0.0.1:PORT */
  get url(): string {
    return `http://127.0.0.1:${this.#port}`;
  }

  get port(): number {
    return this.#port;
  }

  /** A kubeconfig (YAML) for client-node: plain http needs insecure-skip-tls-verify there. */
  kubeconfig(): string {
    return [
      "apiVersion: v1",
      "kind: Config",
      "clusters:",
      "- name: apiserver-standin",
      "  cluster:",
      `    server: ${this.url}`,
      "    insecure-skip-tls-verify: true",
      "users:",
      "- name: tester",
      "  user:",
      "    token: apiserver-standin-token",
      "contexts:",
      "- name: apiserver-standin",
      "  context:",
      "    cluster: apiserver-standin",
      "    user: tester",
      "    namespace: default",
      "current-context: apiserver-standin",
      "",
    ].join("\n");
  }

  /** A client-node KubeConfig loaded from {@link kubeconfig}. */
  kubeConfig(): KubeConfig {
    const config = new KubeConfig();
    config.loadFromString(this.kubeconfig());
    return config;
  }

  // --- direct store access -------------------------------------------------------------------------

  /**
   * Creates or replaces an object as given (status included, no version check), found by its apiVersion
   * and kind; namespaced objects default to "default". Watches see the change. Returns the stored object.
   */
  put(object: KubeObject): KubeObject {
    const type = findResource(object.kind ?? "", object.apiVersion);
    if (type === undefined) throw new Error(`the stand-in serves no ${object.apiVersion} ${object.kind}`);
    return this.#store.put(type, object);
  }

  /** The stored object or undefined; `resource` is a kind ("Secret"), plural ("secrets") or plural.group. */
  get(resource: string, namespace: string | undefined, name: string): KubeObject | undefined {
    return this.#store.find(this.#resource(resource), namespace, name);
  }

  /** Stored objects of a resource, optionally in one namespace and matching a label selector. */
  list(resource: string, options: { namespace?: string; labelSelector?: string } = {}): KubeObject[] {
    const match = parseLabelSelector(options.labelSelector ?? "");
    return this.#store.list(this.#resource(resource), options.namespace, match);
  }

  /** Deletes like a DELETE request (finalizers, garbage collection); false when only marked for deletion. */
  delete(resource: string, namespace: string | undefined, name: string, options?: DeleteOptions): boolean {
    return this.#store.delete(this.#resource(resource), namespace, name, options).removed;
  }

  /** The latest resourceVersion. */
  get resourceVersion(): string {
    return String(this.#store.resourceVersion);
  }

  /** Forgets the watch history: watches from any older resourceVersion now get 410 Expired. */
  compact(): void {
    this.#store.compact();
  }

  // --- request log ---------------------------------------------------------------------------------

  /** Every request received since start (or the last clearRequests), oldest first. */
  get requests(): readonly RequestRecord[] {
    return this.#requests;
  }

  /** How many logged requests match the filter. */
  countRequests(filter?: RequestFilter): number {
    return this.#requests.filter((r) => matches(r, filter)).length;
  }

  clearRequests(): void {
    this.#requests = [];
  }

  /**
   * Resolves with the next request matching the filter when it arrives (before it is answered).
   * Rejects after `timeoutMs` so a test fails instead of hanging.
   */
  nextRequest(filter?: RequestFilter, timeoutMs = 10_000): Promise<RequestRecord> {
    return new Promise((resolve, reject) => {
      const settle = (then: () => void) => {
        clearTimeout(timer);
        this.#waiters.delete(waiter);
        then();
      };
      const waiter: Waiter = {
        filter,
        resolve: (record) => settle(() => resolve(record)),
        reject: (err) => settle(() => reject(err)),
      };
      const timer = setTimeout(
        () =>
          waiter.reject(
            new Error(`no request matching ${JSON.stringify(filter ?? {})} within ${timeoutMs} ms`),
          ),
        timeoutMs,
      );
      this.#waiters.add(waiter);
    });
  }

  /** Watch streams currently open. */
  get openWatches(): number {
    return this.#watches.size;
  }

  // --- fault injection -----------------------------------------------------------------------------

  /** New requests hang until resume() ("hang") or get 503 ServiceUnavailable ("fail"). */
  pause(mode: PauseMode = "hang"): void {
    this.#pause = mode;
  }

  /** Ends a pause; held requests go on. */
  resume(): void {
    this.#pause = undefined;
    this.#releaseHeld();
  }

  /** The next `count` requests (matching `filter`) get `status` with a Failure Status body. */
  failNext(count: number, status = 500, filter?: RequestFilter): void {
    this.#faults.push({ remaining: count, status, filter });
  }

  // --- lifecycle -----------------------------------------------------------------------------------

  /**
   * Stops listening, as a server shutting down does: open watch streams end, held requests get 503, new
   * connections are refused. (Streams end cleanly rather than being cut: under Deno, undici never reports a
   * cut connection to a client-node Watch, whose only clue would be its 30 s inactivity timeout.)
   */
  async stop(): Promise<void> {
    const server = this.#server;
    if (server === undefined) return;
    this.#server = undefined;
    // Refuse new connections first, so a client reconnecting at once sees the server gone.
    const finished = server.shutdown();
    for (const watch of [...this.#watches]) watch.close();
    this.#releaseHeld();
    await finished;
  }

  /**
   * Listens again on the same port with the same objects. Like a restarted API server, whose watch
   * cache starts empty, watches from a resourceVersion older than the current one get 410 Expired.
   */
  async restart(): Promise<void> {
    if (this.#server !== undefined) return;
    this.#store.compact();
    await this.#listen(this.#port);
  }

  /** Stops the server for good; pending nextRequest() calls reject. */
  async close(): Promise<void> {
    await this.stop();
    for (const waiter of [...this.#waiters]) waiter.reject(new Error("the API server stand-in was closed"));
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  #resource(name: string): ResourceType {
    const type = findResource(name);
    if (type === undefined) throw new Error(`the stand-in serves no resource "${name}"`);
    return type;
  }

  #releaseHeld(): void {
    const held = [...this.#held];
    this.#held.clear();
    held.forEach((release) => release());
  }

  #listen(port: number): Promise<void> {
    const context: HandlerContext = {
      store: this.#store,
      bookmarkIntervalMs: this.#bookmarkIntervalMs,
      registerWatch: (watch) => {
        // A watch sent on a kept-alive connection after stop() began would outlive the shutdown.
        if (this.#server === undefined) {
          queueMicrotask(() => watch.close());
          return () => {};
        }
        this.#watches.add(watch);
        return () => this.#watches.delete(watch);
      },
    };
    return new Promise((resolve) => {
      this.#server = Deno.serve({
        hostname: "127.0.0.1",
        port,
        onListen: (addr) => {
          this.#port = addr.port;
          resolve();
        },
      }, (req) => this.#serve(req, context));
    });
  }

  #log(req: Request): RequestRecord {
    const url = new URL(req.url);
    const record: RequestRecord = {
      method: req.method,
      path: url.pathname,
      query: Object.fromEntries(url.searchParams),
      watch: ["true", "1"].includes(url.searchParams.get("watch") ?? ""),
    };
    const contentType = req.headers.get("content-type");
    const authorization = req.headers.get("authorization");
    if (contentType !== null) record.contentType = contentType;
    if (authorization !== null) record.authorization = authorization;
    this.#requests.push(record);
    for (const waiter of [...this.#waiters]) {
      if (matches(record, waiter.filter)) waiter.resolve(record);
    }
    return record;
  }

  /** Applies the injected faults, then answers. */
  async #serve(req: Request, context: HandlerContext): Promise<Response> {
    const record = this.#log(req);
    const fault = this.#faults.find((f) => matches(record, f.filter));
    if (fault !== undefined) {
      if (--fault.remaining <= 0) this.#faults.splice(this.#faults.indexOf(fault), 1);
      const headers: Record<string, string> = fault.status === 429 ? { "retry-after": "1" } : {};
      return jsonResponse(
        fault.status,
        failure(fault.status, `injected failure (HTTP ${fault.status})`).status,
        headers,
      );
    }
    if (this.#pause === "fail") return jsonResponse(503, unavailable().status);
    if (this.#pause === "hang") {
      const stillRunning = await this.#hold();
      if (!stillRunning) return jsonResponse(503, unavailable().status);
    }
    if (this.delayMs > 0) await new Promise((resolve) => setTimeout(resolve, this.delayMs));
    return handle(req, context);
  }

  /** Waits for resume() (true) or stop() (false). */
  #hold(): Promise<boolean> {
    return new Promise((resolve) => this.#held.add(() => resolve(this.#server !== undefined)));
  }
}

/** Starts an API-server stand-in on 127.0.0.1 with an ephemeral port. */
export function startApiServer(options?: ApiServerOptions): Promise<ApiServer> {
  return ApiServer.start(options);
}
