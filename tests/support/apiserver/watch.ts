/**
 * `?watch=true` streams: one JSON event per line over a chunked response, as the real API server sends.
 * Starts with ADDED for every object (no resourceVersion or "0") or replays history after a version;
 * a version older than the history gets an ERROR event with a 410 Expired Status and the stream ends.
 */

import { apiVersionOf, type ResourcePath } from "./resources.ts";
import type { Matcher } from "./selectors.ts";
import { badRequest, failure } from "./status.ts";
import type { Change, KubeObject, Store } from "./store.ts";

/** Query parameters of a watch request that shape the stream. */
export interface WatchParams {
  resourceVersion?: string;
  allowWatchBookmarks: boolean;
  timeoutSeconds?: number;
  match: Matcher;
}

/** An open watch stream that the server can end. */
export interface WatchHandle {
  close(): void;
}

type EventType = "ADDED" | "MODIFIED" | "DELETED" | "BOOKMARK" | "ERROR";

const encoder = new TextEncoder();

/** Presents a stored object in the requested version (the same object is served under every version). */
export function present(object: KubeObject, path: ResourcePath): KubeObject {
  return { ...object, apiVersion: apiVersionOf(path.type, path.version) };
}

/**
 * What a watcher with a selector sees for a change: an object entering the selection is ADDED, one
 * leaving it is DELETED, as the real watch cache does.
 */
function eventFor(change: Change, match: Matcher): EventType | undefined {
  const now = match(change.object);
  if (change.type !== "MODIFIED") return now ? change.type : undefined;
  const before = change.previous !== undefined && match(change.previous);
  if (now) return before ? "MODIFIED" : "ADDED";
  return before ? "DELETED" : undefined;
}

/** Builds the streaming Response for a watch; `register` tracks it so the server can end it on stop. */
export function serveWatch(
  store: Store,
  path: ResourcePath,
  params: WatchParams,
  bookmarkIntervalMs: number,
  register: (handle: WatchHandle) => () => void,
): Response {
  const rv = params.resourceVersion;
  const fromVersion = rv === undefined || rv === "" || rv === "0" ? undefined : Number(rv);
  if (fromVersion !== undefined && !Number.isSafeInteger(fromVersion)) {
    throw badRequest(`invalid resource version: ${JSON.stringify(rv)}`);
  }
  const inScope = (change: Change) =>
    change.resource === path.type &&
    (path.namespace === undefined || change.object.metadata.namespace === path.namespace);
  let cleanup = () => {};
  const body = new ReadableStream<Uint8Array>({
    start(controller) {
      let open = true;
      const send = (type: EventType, object: unknown) => {
        if (open) controller.enqueue(encoder.encode(JSON.stringify({ type, object }) + "\n"));
      };
      const sendChange = (change: Change) => {
        const type = inScope(change) ? eventFor(change, params.match) : undefined;
        if (type !== undefined) send(type, present(change.object, path));
      };
      const timers: ReturnType<typeof setTimeout>[] = [];
      let unsubscribe = () => {};
      let unregister = () => {};
      cleanup = () => {
        if (!open) return;
        open = false;
        timers.forEach(clearTimeout);
        unsubscribe();
        unregister();
      };
      const end = () => {
        if (!open) return;
        cleanup();
        controller.close();
      };

      if (fromVersion === undefined) {
        for (const object of store.list(path.type, path.namespace, params.match)) {
          send("ADDED", present(object, path));
        }
      } else {
        const replay = store.changesSince(path.type, fromVersion);
        if (replay === undefined) {
          const expired = failure(
            410,
            `too old resource version: ${fromVersion} (${store.oldestWatchableVersion})`,
            "Expired",
          );
          send("ERROR", expired.status);
          end();
          return;
        }
        replay.forEach(sendChange);
      }
      unsubscribe = store.subscribe(sendChange);
      unregister = register({ close: end });
      if (params.allowWatchBookmarks) {
        timers.push(setInterval(() => {
          const metadata = { resourceVersion: String(store.resourceVersion) };
          send("BOOKMARK", {
            kind: path.type.kind,
            apiVersion: apiVersionOf(path.type, path.version),
            metadata,
          });
        }, bookmarkIntervalMs));
      }
      if (params.timeoutSeconds !== undefined) {
        timers.push(setTimeout(() => end(), params.timeoutSeconds * 1000));
      }
    },
    cancel() {
      // The client went away (e.g. client-node's Watch aborted): stop producing.
      cleanup();
    },
  });
  return new Response(body, { status: 200, headers: { "content-type": "application/json" } });
}
