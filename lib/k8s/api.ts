/**
 * THE Kubernetes access module: every API call the driver makes goes through {@link KubeApi}, and
 * {@link API_CALLS} lists exactly those calls (the RBAC manifests grant exactly these, checked by
 * tests/unit/manifests_test.ts). Requests use @kubernetes/client-node's kubeconfig authentication
 * (tokens, client certificates, exec plugins, in-cluster account) and its fetch transport; this module
 * adds what the driver needs around them: a user agent, a client-side rate limit, per-request timeouts,
 * a line-by-line watch that ends when asked, and errors that are one sentence naming the object.
 */
import {
  HttpMethod,
  IsomorphicFetchHttpLibrary,
  type KubeConfig,
  RequestContext,
} from "@kubernetes/client-node";
import { DriverError, GrpcStatus, messageOf } from "../errors.ts";
import { SPC_GROUP } from "../spc/parse.ts";
import { KUBERNETES_DEFAULTS } from "./defaults.ts";
import { TokenBucket } from "./rate-limit.ts";

/** One Kubernetes API call the driver makes: the verbs it uses on a resource. */
export interface ApiCall {
  group: string;
  resource: string;
  verbs: string[];
}

/** A resource the driver addresses, by its REST coordinates. */
export interface Resource {
  group: string;
  version: string;
  plural: string;
  /** Singular lower-case name used in error messages ("secretproviderclass"). */
  singular: string;
}

/** The resources the driver uses. */
export const RESOURCES = {
  spcs: { group: SPC_GROUP, version: "v1", plural: "secretproviderclasses", singular: "secretproviderclass" },
  spcps: {
    group: SPC_GROUP,
    version: "v1",
    plural: "secretproviderclasspodstatuses",
    singular: "secretproviderclasspodstatus",
  },
  pods: { group: "", version: "v1", plural: "pods", singular: "pod" },
  secrets: { group: "", version: "v1", plural: "secrets", singular: "secret" },
  events: { group: "", version: "v1", plural: "events", singular: "event" },
} as const satisfies Record<string, Resource>;

export type ResourceName = keyof typeof RESOURCES;
type Verb = "get" | "list" | "watch" | "create" | "update";

/** Exactly the calls {@link KubeApi} lets the driver make; anything else throws before a request. */
const ALLOWED: Record<ResourceName, Verb[]> = {
  // Looked up at publish time, through a cluster-wide informer with a GET on a cache miss.
  spcs: ["get", "list", "watch"],
  // Created or updated after each mount (update also records `mounted: false` after an unmount);
  // this node's objects are listed and watched by the Secret sync controller.
  spcps: ["create", "get", "list", "update", "watch"],
  // The sync controller reads the pod: its uid, phase and owners (the owners of synced Secrets).
  pods: ["get"],
  // Sync failures are reported as events on the pod.
  events: ["create"],
  // Synced Secrets are read, created and updated; the driver never deletes one (garbage collection does).
  secrets: ["create", "get", "update"],
};

/** The API calls the driver makes, for RBAC: group "" is the core group. */
export const API_CALLS: ApiCall[] = (Object.keys(ALLOWED) as ResourceName[]).map((name) => ({
  group: RESOURCES[name].group,
  resource: RESOURCES[name].plural,
  verbs: [...ALLOWED[name]],
}));

/** The metadata fields the driver reads or writes. */
export interface ObjectMeta {
  name?: string;
  generateName?: string;
  namespace?: string;
  uid?: string;
  resourceVersion?: string;
  deletionTimestamp?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  ownerReferences?: OwnerReference[];
  [field: string]: unknown;
}

/** metadata.ownerReferences[] entry. */
export interface OwnerReference {
  apiVersion: string;
  kind: string;
  name: string;
  uid: string;
  controller?: boolean;
  blockOwnerDeletion?: boolean;
}

/** Any Kubernetes object as JSON. */
export interface KubeObject {
  apiVersion?: string;
  kind?: string;
  metadata: ObjectMeta;
  [field: string]: unknown;
}

/** A list response. */
export interface KubeList<T extends KubeObject = KubeObject> {
  metadata: { resourceVersion?: string; continue?: string };
  items: T[];
}

/** One watch event as the API server streams it. */
export interface WatchEvent {
  type: "ADDED" | "MODIFIED" | "DELETED" | "BOOKMARK" | "ERROR";
  object: KubeObject & { code?: number; reason?: string; message?: string };
}

/** Tuning of a {@link KubeApi}. */
export interface KubeApiOptions {
  /** Sent as User-Agent on every request. */
  userAgent: string;
  /** Sustained requests per second (unset: defaults.ts). */
  qps?: number;
  /** Requests allowed at once above the sustained rate (unset: defaults.ts). */
  burst?: number;
  /** Deadline of one request (watches excepted: they have their own timeouts). */
  timeoutMs?: number;
}

/** Options of one watch request. */
export interface WatchOptions {
  namespace?: string;
  labelSelector?: string;
  resourceVersion?: string;
  /** Asks the server to end the stream after this long, so the caller re-watches. */
  timeoutSeconds: number;
  /** Gives up on a stream that sent nothing (not even a bookmark) for this long. */
  inactivityMs: number;
}

/**
 * A failed API call: a DriverError (so a publish that fails on it reports a fitting gRPC code) that
 * keeps the HTTP status and the Status reason for callers that branch on them (404, 409, 410).
 */
export class KubeApiError extends DriverError {
  constructor(
    /** HTTP status; 0 when no answer arrived (connection failed, timeout). */
    readonly httpStatus: number,
    /** metav1.Status reason ("NotFound", "AlreadyExists", "Conflict", "Expired", ...) or "". */
    readonly reason: string,
    message: string,
    options?: ErrorOptions,
  ) {
    super(grpcCodeFor(httpStatus), message, options);
    this.name = "KubeApiError";
  }

  get notFound(): boolean {
    return this.httpStatus === 404;
  }
  /** 409: AlreadyExists on create, Conflict on a stale update. */
  get conflict(): boolean {
    return this.httpStatus === 409;
  }
  /** 410: the resourceVersion is too old for a watch. */
  get expired(): boolean {
    return this.httpStatus === 410;
  }
}

function grpcCodeFor(httpStatus: number): GrpcStatus {
  if (httpStatus === 404) return GrpcStatus.NOT_FOUND;
  if (httpStatus === 401) return GrpcStatus.UNAUTHENTICATED;
  if (httpStatus === 403) return GrpcStatus.PERMISSION_DENIED;
  if (httpStatus === 409) return GrpcStatus.ABORTED;
  if (httpStatus === 400 || httpStatus === 422) return GrpcStatus.INVALID_ARGUMENT;
  if (httpStatus === 0 || httpStatus === 429 || httpStatus >= 500) return GrpcStatus.UNAVAILABLE;
  return GrpcStatus.INTERNAL;
}

/** "secretproviderclass default/name", "secretproviderclasspodstatuses in all namespaces", ... */
function describe(resource: Resource, namespace?: string, name?: string): string {
  if (name !== undefined) return `${resource.singular} ${namespace ? `${namespace}/` : ""}${name}`;
  return `${resource.plural} ${namespace ? `in namespace ${namespace}` : "in all namespaces"}`;
}

/** The reason for a failed fetch: the errno of the connection when undici gives one. */
function transportDetail(err: unknown, server: string): string {
  const cause = (err as { cause?: { code?: string; message?: string } }).cause;
  const code = cause?.code ?? (err as { code?: string }).code;
  if (code === "ECONNREFUSED") return `the API server at ${server} refused the connection`;
  if (code === "ENOTFOUND" || code === "EAI_AGAIN") {
    return `the API server host of ${server} does not resolve`;
  }
  if (code) return `the API server at ${server} is unreachable (${code})`;
  return `the API server at ${server} is unreachable (${cause?.message ?? messageOf(err)})`;
}

/** Builds the sentence for a non-2xx answer from its metav1.Status body when there is one. */
function statusError(status: number, body: string, action: string): KubeApiError {
  let reason = "";
  let detail = `HTTP ${status}`;
  try {
    const parsed = JSON.parse(body) as { kind?: string; reason?: string; message?: string };
    if (parsed.kind === "Status") {
      reason = parsed.reason ?? "";
      if (parsed.message) detail = `${parsed.message} (HTTP ${status}${reason ? ` ${reason}` : ""})`;
    }
  } catch {
    // not a Status: keep the bare code
  }
  return new KubeApiError(status, reason, `could not ${action}: ${detail}`);
}

/** Runs `body` with a signal that aborts after `ms` or when `outer` aborts; the timer is always cleared. */
async function withDeadline<T>(
  ms: number,
  outer: AbortSignal | undefined,
  body: (signal: AbortSignal, timedOut: () => boolean) => Promise<T>,
): Promise<T> {
  const controller = new AbortController();
  let expired = false;
  const timer = setTimeout(() => {
    expired = true;
    controller.abort(new DOMException("request timed out", "TimeoutError"));
  }, ms);
  const onAbort = () => controller.abort(outer?.reason);
  outer?.addEventListener("abort", onAbort, { once: true });
  try {
    return await body(controller.signal, () => expired);
  } finally {
    clearTimeout(timer);
    outer?.removeEventListener("abort", onAbort);
  }
}

/** What a list call may narrow and page by. */
export interface ListOptions {
  namespace?: string;
  labelSelector?: string;
  limit?: number;
  continue?: string;
  signal?: AbortSignal;
}

/**
 * The calls the driver makes, and nothing else: {@link KubeApi} makes them over HTTP, the in-memory twin
 * (tests/support/kube-twins.ts) on a map. The informers, the SPCPS recorder, the SPC source, the event
 * recorder and the Secret sync take this, never the class.
 */
export interface KubeClient {
  /** GET one object; a {@link KubeApiError} with `notFound` when it does not exist. */
  get<T extends KubeObject = KubeObject>(res: ResourceName, namespace: string, name: string): Promise<T>;
  /**
   * GET a list, in one namespace or all, optionally filtered by a label selector; `limit` and `continue`
   * page through it (the next page's token is the answer's `metadata.continue`).
   */
  list<T extends KubeObject = KubeObject>(res: ResourceName, options?: ListOptions): Promise<KubeList<T>>;
  /** POST a new object; `conflict` when it exists already. */
  create<T extends KubeObject = KubeObject>(
    res: ResourceName,
    namespace: string,
    body: KubeObject,
  ): Promise<T>;
  /** PUT an object; `conflict` when its metadata.resourceVersion is stale. */
  update<T extends KubeObject = KubeObject>(res: ResourceName, body: KubeObject): Promise<T>;
  /** Streams events until the server ends the stream or `signal` aborts. */
  watch(
    res: ResourceName,
    options: WatchOptions,
    onEvent: (event: WatchEvent) => void,
    signal: AbortSignal,
  ): Promise<void>;
}

/** How many times a write is tried when it meets a 409 (each time on a fresh read). */
const CONFLICT_ATTEMPTS = 5;

/**
 * Runs `attempt` (read, decide, write) again when it fails with a 409 Conflict or AlreadyExists, up to
 * {@link CONFLICT_ATTEMPTS} times in all; any other failure, or the last 409, is thrown.
 */
export async function retryOnConflict<T>(attempt: () => Promise<T>): Promise<T> {
  for (let tries = 1;; tries++) {
    try {
      return await attempt();
    } catch (err) {
      if (!(err instanceof KubeApiError && err.conflict) || tries >= CONFLICT_ATTEMPTS) throw err;
    }
  }
}

/** The driver's Kubernetes client. */
export class KubeApi implements KubeClient {
  readonly #config: KubeConfig;
  readonly #server: string;
  readonly #userAgent: string;
  readonly #timeoutMs: number;
  readonly #limiter: TokenBucket;
  readonly #http = new IsomorphicFetchHttpLibrary();
  /** client-node builds a new connection pool per request; the first one is kept and reused. */
  #dispatcher: unknown;

  constructor(config: KubeConfig, options: KubeApiOptions) {
    const cluster = config.getCurrentCluster();
    if (!cluster) throw new Error("the kubeconfig has no current cluster");
    this.#config = config;
    this.#server = cluster.server.replace(/\/+$/, "");
    this.#userAgent = options.userAgent;
    this.#timeoutMs = options.timeoutMs ?? KUBERNETES_DEFAULTS.requestTimeoutMs;
    this.#limiter = new TokenBucket(
      options.qps ?? KUBERNETES_DEFAULTS.qps,
      options.burst ?? KUBERNETES_DEFAULTS.burst,
    );
  }

  /** The API server's URL. */
  get server(): string {
    return this.#server;
  }

  /** GET one object. */
  get<T extends KubeObject = KubeObject>(res: ResourceName, namespace: string, name: string): Promise<T> {
    return this.#json("get", res, "GET", { namespace, name });
  }

  /**
   * GET a list, in one namespace or all, optionally filtered by a label selector; `limit` and `continue`
   * page through it (the next page's token is the answer's `metadata.continue`).
   */
  list<T extends KubeObject = KubeObject>(
    res: ResourceName,
    options: ListOptions = {},
  ): Promise<KubeList<T>> {
    const query: Record<string, string> = {};
    if (options.labelSelector) query.labelSelector = options.labelSelector;
    if (options.limit) query.limit = String(options.limit);
    if (options.continue) query.continue = options.continue;
    return this.#json("list", res, "GET", { namespace: options.namespace, query, signal: options.signal });
  }

  /** POST a new object into `namespace`. */
  create<T extends KubeObject = KubeObject>(
    res: ResourceName,
    namespace: string,
    body: KubeObject,
  ): Promise<T> {
    return this.#json("create", res, "POST", { namespace, body, display: body.metadata.name });
  }

  /** PUT an object; its metadata.resourceVersion makes a stale write fail with 409 Conflict. */
  update<T extends KubeObject = KubeObject>(res: ResourceName, body: KubeObject): Promise<T> {
    const { namespace, name } = body.metadata;
    return this.#json("update", res, "PUT", { namespace, name, body });
  }

  /**
   * Watches a resource and calls `onEvent` for every event. Resolves when the server ends the stream
   * or `signal` aborts (the stream is cancelled here, without waiting for the transport to notice);
   * rejects when the request fails or the stream stays silent for `inactivityMs`.
   */
  async watch(
    res: ResourceName,
    options: WatchOptions,
    onEvent: (event: WatchEvent) => void,
    signal: AbortSignal,
  ): Promise<void> {
    this.#check(res, "watch");
    const resource = RESOURCES[res];
    const what = describe(resource, options.namespace);
    const query: Record<string, string> = {
      watch: "true",
      allowWatchBookmarks: "true",
      timeoutSeconds: String(options.timeoutSeconds),
    };
    if (options.labelSelector) query.labelSelector = options.labelSelector;
    if (options.resourceVersion) query.resourceVersion = options.resourceVersion;
    await this.#limiter.take(signal);
    const controller = new AbortController();
    const stop = () => controller.abort(signal.reason);
    signal.addEventListener("abort", stop, { once: true });
    let silentTooLong = false;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const armInactivity = () => {
      clearTimeout(timer);
      timer = setTimeout(() => {
        silentTooLong = true;
        controller.abort();
      }, options.inactivityMs);
    };
    try {
      armInactivity();
      const response = await this.#send("GET", this.#url(resource, options.namespace, undefined, query), {
        signal: controller.signal,
      }).catch((err) => {
        throw this.#transportError(err, `watch ${what}`, silentTooLong, options.inactivityMs);
      });
      if (response.httpStatusCode !== 200) {
        throw statusError(response.httpStatusCode, await response.body.text(), `watch ${what}`);
      }
      const stream = response.body.stream() as ReadableStream<Uint8Array> | undefined;
      if (!stream) return;
      const reader = stream.getReader();
      // Cancelling the reader ends read() at once; the transport may notice the abort much later.
      controller.signal.addEventListener("abort", () => reader.cancel().catch(() => {}), { once: true });
      const decoder = new TextDecoder();
      let buffered = "";
      while (true) {
        const { done, value } = await reader.read().catch((err) => {
          if (controller.signal.aborted) return { done: true, value: undefined };
          throw this.#transportError(err, `watch ${what}`, false, 0);
        });
        if (done) break;
        armInactivity();
        buffered += decoder.decode(value, { stream: true });
        let newline: number;
        while ((newline = buffered.indexOf("\n")) >= 0) {
          const line = buffered.slice(0, newline).trim();
          buffered = buffered.slice(newline + 1);
          if (line !== "") onEvent(JSON.parse(line) as WatchEvent);
        }
      }
      if (silentTooLong) {
        throw new KubeApiError(
          0,
          "Timeout",
          `could not watch ${what}: the stream sent nothing for ${options.inactivityMs} ms`,
        );
      }
    } finally {
      clearTimeout(timer);
      signal.removeEventListener("abort", stop);
      if (!controller.signal.aborted) controller.abort();
    }
  }

  /** Closes the kept connection pool. */
  async close(): Promise<void> {
    const dispatcher = this.#dispatcher as { destroy?: () => Promise<void> } | undefined;
    this.#dispatcher = undefined;
    await dispatcher?.destroy?.().catch(() => {});
  }

  #check(res: ResourceName, verb: Verb): void {
    if (!ALLOWED[res].includes(verb)) {
      // A programming error: API_CALLS (and so the RBAC) must list every call the code makes.
      throw new Error(
        `the driver does not ${verb} ${RESOURCES[res].plural}: add it to API_CALLS and the RBAC`,
      );
    }
  }

  #url(
    resource: Resource,
    namespace: string | undefined,
    name: string | undefined,
    query: Record<string, string> = {},
  ): string {
    const base = resource.group === "" ? "/api/v1" : `/apis/${resource.group}/${resource.version}`;
    const ns = namespace ? `/namespaces/${encodeURIComponent(namespace)}` : "";
    const object = name !== undefined ? `/${encodeURIComponent(name)}` : "";
    const search = new URLSearchParams(query).toString();
    return `${this.#server}${base}${ns}/${resource.plural}${object}${search ? `?${search}` : ""}`;
  }

  async #json<T>(
    verb: Verb,
    res: ResourceName,
    method: "GET" | "POST" | "PUT",
    request: {
      namespace?: string;
      name?: string;
      query?: Record<string, string>;
      body?: KubeObject;
      display?: string;
      signal?: AbortSignal;
    },
  ): Promise<T> {
    this.#check(res, verb);
    const resource = RESOURCES[res];
    const action = `${verb} ${describe(resource, request.namespace, request.name ?? request.display)}`;
    await this.#limiter.take(request.signal);
    return await withDeadline(this.#timeoutMs, request.signal, async (signal, timedOut) => {
      const url = this.#url(resource, request.namespace, request.name, request.query);
      const response = await this.#send(method, url, { signal, body: request.body }).catch((err) => {
        throw this.#transportError(err, action, timedOut(), this.#timeoutMs);
      });
      const text = await response.body.text().catch((err) => {
        throw this.#transportError(err, action, timedOut(), this.#timeoutMs);
      });
      if (response.httpStatusCode < 200 || response.httpStatusCode >= 300) {
        throw statusError(response.httpStatusCode, text, action);
      }
      return JSON.parse(text) as T;
    });
  }

  async #send(method: "GET" | "POST" | "PUT", url: string, options: { signal: AbortSignal; body?: unknown }) {
    const context = new RequestContext(
      url,
      method === "GET" ? HttpMethod.GET : method === "POST" ? HttpMethod.POST : HttpMethod.PUT,
    );
    // Re-applied per request: token files (the in-cluster account's) are re-read when they rotate.
    await this.#config.applySecurityAuthentication(context);
    if (this.#dispatcher === undefined) this.#dispatcher = context.getDispatcher();
    else context.setDispatcher(this.#dispatcher as never);
    context.setHeaderParam("User-Agent", this.#userAgent);
    context.setHeaderParam("Accept", "application/json");
    if (options.body !== undefined) {
      context.setHeaderParam("Content-Type", "application/json");
      context.setBody(JSON.stringify(options.body));
    }
    context.setSignal(options.signal);
    return await this.#http.send(context).toPromise();
  }

  #transportError(err: unknown, action: string, timedOut: boolean, timeoutMs: number): KubeApiError {
    if (err instanceof KubeApiError) return err;
    if (timedOut) {
      return new KubeApiError(
        0,
        "Timeout",
        `could not ${action}: the API server did not answer within ${timeoutMs} ms`,
        {
          cause: err,
        },
      );
    }
    return new KubeApiError(0, "", `could not ${action}: ${transportDetail(err, this.#server)}`, {
      cause: err,
    });
  }
}
