/**
 * A small REST client for the test control plane, authenticated with a client certificate (the admin's)
 * or a token: what the harness and the tests use to set up objects and look at them. The driver itself
 * never uses it; it talks through lib/k8s.
 */

/** Any Kubernetes object as JSON. */
export interface KubeObject {
  apiVersion?: string;
  kind?: string;
  metadata: {
    name?: string;
    namespace?: string;
    uid?: string;
    resourceVersion?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
    ownerReferences?: {
      apiVersion: string;
      kind: string;
      name: string;
      uid: string;
      controller?: boolean;
      blockOwnerDeletion?: boolean;
    }[];
    [field: string]: unknown;
  };
  [field: string]: unknown;
}

/** A non-2xx answer: its HTTP status and the Status message. */
export class RestError extends Error {
  constructor(readonly status: number, readonly reason: string, message: string) {
    super(message);
    this.name = "RestError";
  }
}

/** Credentials of {@link RestClient}: PEM text, and a client certificate or a bearer token. */
export type ClientCredentials =
  & { server: string; caCert: string }
  & ({ cert: string; key: string } | { token: string });

/** The REST path of a collection or object: `path("v1", "pods", "ns", "name")`. */
export function restPath(apiVersion: string, plural: string, namespace?: string, name?: string): string {
  const base = apiVersion.includes("/") ? `/apis/${apiVersion}` : `/api/${apiVersion}`;
  const ns = namespace ? `/namespaces/${namespace}` : "";
  return `${base}${ns}/${plural}${name !== undefined ? `/${name}` : ""}`;
}

export class RestClient {
  readonly server: string;
  readonly #client: Deno.HttpClient;
  readonly #authorization: Record<string, string>;

  constructor(credentials: ClientCredentials) {
    this.server = credentials.server.replace(/\/+$/, "");
    const tls = "token" in credentials ? {} : { cert: credentials.cert, key: credentials.key };
    this.#client = Deno.createHttpClient({ caCerts: [credentials.caCert], ...tls });
    this.#authorization = "token" in credentials ? { Authorization: `Bearer ${credentials.token}` } : {};
  }

  /** One request; resolves with the parsed JSON body (or the text when it is not JSON). */
  async request<T = KubeObject>(
    method: string,
    path: string,
    body?: unknown,
    options: { contentType?: string; signal?: AbortSignal } = {},
  ): Promise<T> {
    const response = await fetch(`${this.server}${path}`, {
      method,
      client: this.#client,
      headers: {
        ...this.#authorization,
        Accept: "application/json",
        ...(body !== undefined ? { "Content-Type": options.contentType ?? "application/json" } : {}),
      },
      body: body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body),
      signal: options.signal ?? AbortSignal.timeout(30_000),
    });
    const text = await response.text();
    let parsed: unknown = text;
    try {
      parsed = JSON.parse(text);
    } catch {
      // plain text (/metrics, /readyz)
    }
    if (!response.ok) {
      const status = parsed as { reason?: string; message?: string };
      throw new RestError(
        response.status,
        status.reason ?? "",
        `${method} ${path}: HTTP ${response.status}: ${status.message ?? text.slice(0, 500)}`,
      );
    }
    return parsed as T;
  }

  get<T = KubeObject>(path: string): Promise<T> {
    return this.request<T>("GET", path);
  }

  /** GET, or undefined on 404. */
  async find<T = KubeObject>(path: string): Promise<T | undefined> {
    try {
      return await this.get<T>(path);
    } catch (err) {
      if (err instanceof RestError && err.status === 404) return undefined;
      throw err;
    }
  }

  /** The items of a list. */
  async list<T = KubeObject>(path: string): Promise<T[]> {
    return (await this.get<{ items: T[] }>(path)).items;
  }

  post<T = KubeObject>(path: string, body: unknown): Promise<T> {
    return this.request<T>("POST", path, body);
  }

  put<T = KubeObject>(path: string, body: unknown): Promise<T> {
    return this.request<T>("PUT", path, body);
  }

  /** A JSON merge patch. */
  patch<T = KubeObject>(path: string, body: unknown): Promise<T> {
    return this.request<T>("PATCH", path, body, { contentType: "application/merge-patch+json" });
  }

  delete(path: string, options: { propagationPolicy?: string } = {}): Promise<unknown> {
    return this.request("DELETE", path, { kind: "DeleteOptions", apiVersion: "v1", ...options });
  }

  /** Creates `object` at the REST path its apiVersion and `plural` name. */
  create<T extends KubeObject>(plural: string, object: T): Promise<T> {
    return this.post<T>(restPath(object.apiVersion!, plural, object.metadata.namespace), object);
  }

  close(): void {
    this.#client.close();
  }
}
