/** Maps one HTTP request onto the store: REST verbs (no PATCH: the driver never sends one), list/watch query parameters, discovery. */

import { discovery } from "./discovery.ts";
import { apiVersionOf, parseResourcePath, type ResourcePath } from "./resources.ts";
import { type Matcher, parseFieldSelector, parseLabelSelector } from "./selectors.ts";
import { ApiError, badRequest, deleteSuccess, failure } from "./status.ts";
import type { DeleteOptions, KubeObject, Store } from "./store.ts";
import { present, serveWatch, type WatchHandle } from "./watch.ts";

/** What the handler needs from the server around it. */
export interface HandlerContext {
  store: Store;
  bookmarkIntervalMs: number;
  /** Tracks an open watch so stop()/close() can end it; returns the function that forgets it. */
  registerWatch: (handle: WatchHandle) => () => void;
}

/** A JSON response, as the API server sends every non-watch answer. */
export function jsonResponse(status: number, body: unknown, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: { "content-type": "application/json", ...headers },
  });
}

/** The real server's 404 for a path that names no resource. */
const pathNotFound = () => failure(404, "the server could not find the requested resource", "NotFound", {});

async function readJson(req: Request): Promise<unknown> {
  const text = await req.text();
  try {
    return JSON.parse(text);
  } catch (err) {
    throw badRequest(`the body of the request could not be decoded as JSON: ${(err as Error).message}`);
  }
}

function selectorFor(path: ResourcePath, query: URLSearchParams): Matcher {
  const labels = parseLabelSelector(query.get("labelSelector") ?? "");
  const allowed = [
    "metadata.name",
    ...(path.type.namespaced ? ["metadata.namespace"] : []),
    ...path.type.fieldLabels,
  ];
  const fields = parseFieldSelector(query.get("fieldSelector") ?? "", allowed);
  // Watching /resource/{name} is the legacy way to watch one object.
  const byName: Matcher = path.name === undefined ? () => true : (o) => o.metadata?.name === path.name;
  return (o) => labels(o) && fields(o) && byName(o);
}

// Continue tokens carry the key of the last item returned; opaque to clients, as the real ones are.
const encodeContinue = (o: KubeObject) => btoa(JSON.stringify([o.metadata.namespace ?? "", o.metadata.name]));

function decodeContinue(token: string): [string, string] {
  try {
    const [namespace, name] = JSON.parse(atob(token));
    if (typeof namespace === "string" && typeof name === "string") return [namespace, name];
  } catch {
    // fall through to the error below
  }
  throw badRequest(`invalid continue token: ${token}`);
}

function list(store: Store, path: ResourcePath, query: URLSearchParams): Response {
  let items = store.list(path.type, path.namespace, selectorFor(path, query));
  const token = query.get("continue");
  if (token) {
    const after = decodeContinue(token);
    items = items.filter((o) => [o.metadata.namespace ?? "", o.metadata.name!].join("/") > after.join("/"));
  }
  const metadata: Record<string, unknown> = { resourceVersion: String(store.resourceVersion) };
  const limit = Number(query.get("limit") ?? 0);
  if (limit > 0 && items.length > limit) {
    metadata.remainingItemCount = items.length - limit;
    items = items.slice(0, limit);
    metadata.continue = encodeContinue(items[items.length - 1]);
  }
  // Built-in lists leave kind/apiVersion off their items; custom resource lists keep them.
  const shown = items.map((o) => {
    if (path.type.custom) return present(o, path);
    const { kind: _k, apiVersion: _a, ...rest } = o;
    return rest;
  });
  const apiVersion = apiVersionOf(path.type, path.version);
  return jsonResponse(200, { kind: `${path.type.kind}List`, apiVersion, metadata, items: shown });
}

async function deleteOptions(req: Request, query: URLSearchParams): Promise<DeleteOptions> {
  const text = await req.text();
  const body = text.trim() === "" ? {} : JSON.parse(text) as DeleteOptions;
  const policy = query.get("propagationPolicy") ?? body.propagationPolicy;
  return { ...body, propagationPolicy: policy as DeleteOptions["propagationPolicy"] };
}

function deleteResponse(path: ResourcePath, object: KubeObject, removed: boolean): Response {
  if (path.type.deleteReturnsObject || !removed) return jsonResponse(200, present(object, path));
  return jsonResponse(200, deleteSuccess(path.type, object.metadata.name!, object.metadata.uid!));
}

async function rest(req: Request, url: URL, path: ResourcePath, ctx: HandlerContext): Promise<Response> {
  const { store } = ctx;
  const query = url.searchParams;
  const { type, namespace, name, subresource } = path;
  const isWatch = ["true", "1"].includes(query.get("watch") ?? "");
  switch (req.method) {
    case "GET":
      if (isWatch) {
        const timeout = query.get("timeoutSeconds");
        return serveWatch(
          store,
          path,
          {
            resourceVersion: query.get("resourceVersion") ?? undefined,
            allowWatchBookmarks: query.get("allowWatchBookmarks") === "true",
            timeoutSeconds: timeout === null ? undefined : Number(timeout),
            match: selectorFor(path, query),
          },
          ctx.bookmarkIntervalMs,
          ctx.registerWatch,
        );
      }
      if (name === undefined) return list(store, path, query);
      return jsonResponse(200, present(store.get(type, namespace, name), path));
    case "POST":
      if (name !== undefined || namespace === undefined && type.namespaced) break;
      return jsonResponse(201, present(store.create(type, namespace, await readJson(req)), path));
    case "PUT":
      if (name === undefined) break;
      return jsonResponse(
        200,
        present(store.update(type, namespace, name, await readJson(req), subresource), path),
      );
    case "DELETE": {
      const options = await deleteOptions(req, query);
      if (name !== undefined) {
        const { object, removed } = store.delete(type, namespace, name, options);
        return deleteResponse(path, object, removed);
      }
      for (const object of store.list(type, namespace, selectorFor(path, query))) {
        store.delete(type, object.metadata.namespace, object.metadata.name!, options);
      }
      return jsonResponse(200, { kind: "Status", apiVersion: "v1", metadata: {}, status: "Success" });
    }
  }
  throw failure(405, `the server does not allow this method on the requested resource`, "MethodNotAllowed");
}

/** Answers one request: discovery, a REST call, or a Failure Status (never throws). */
export async function handle(req: Request, ctx: HandlerContext): Promise<Response> {
  const url = new URL(req.url);
  try {
    if (req.method === "GET") {
      const doc = discovery(url.pathname, url.host);
      if (doc !== undefined) return jsonResponse(200, doc);
    }
    const path = parseResourcePath(url.pathname);
    if (path === undefined) throw pathNotFound();
    return await rest(req, url, path, ctx);
  } catch (err) {
    if (err instanceof ApiError) return jsonResponse(err.code, err.status);
    if (err instanceof SyntaxError) return jsonResponse(400, badRequest(err.message).status);
    return jsonResponse(500, failure(500, `internal error in the API server stand-in: ${err}`).status);
  }
}
