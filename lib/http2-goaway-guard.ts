/**
 * Works around two bugs that a peer's GOAWAY triggers under Deno 2.9.6's `node:http2`.
 *
 * 1. A memory-safety bug of Deno 2.9.6's `node:http2` (denoland/deno#36788) that kills the whole
 * process with `free(): invalid pointer`, a segfault or the nghttp2 assertion
 * `find_stream_on_goaway_func: stream->closed_next == NULL`.
 *
 * When a peer's GOAWAY arrives, Deno's `node:http2` emits `goaway` and then closes (or destroys) the
 * session from inside nghttp2's frame callback, while nghttp2 is still processing that GOAWAY; once the
 * session has carried a few dozen streams, nghttp2 then walks freed memory. Every grpc-js peer sends a
 * GOAWAY when it closes a channel or shuts a server down, so: a server crashes when a client that made
 * ~30+ calls on one connection hangs up (our provider client at driver shutdown, CSI clients), and a client
 * crashes when its server shuts down gracefully (the driver, when a provider restarts).
 *
 * The guard runs first among a session's `goaway` listeners and makes `close()` and `destroy()` on that
 * session wait for the next macrotask while the GOAWAY is being dispatched, so the session is torn down
 * from a clean stack, after nghttp2 has finished with the frame. Nothing else changes: the session still
 * refuses new streams at once (nghttp2 has recorded the GOAWAY) and still closes one tick later.
 *
 * 2. A busy loop that freezes the whole process (100 % CPU, memory growing by ~100 MiB/s, no timer or I/O
 * callback ever runs again) when a server answers a new connection with SETTINGS and at once GOAWAY.
 * Deno emits a session's `remoteSettings` and `goaway` in one go, where Node runs the microtask queue
 * between the two frames. grpc-js resolves its connection attempt on `remoteSettings` and the subchannel
 * subscribes to the transport's disconnect a few microtasks later, but the GOAWAY has already been reported
 * to nobody: the subchannel stays READY on a dead session, every call on it fails synchronously with "The
 * session has been destroyed", and grpc-js's transparent retry picks the same subchannel again, forever,
 * inside the microtask queue. The guard turns such a connection into a failed connection attempt.
 */
import type * as grpc from "@grpc/grpc-js";
import { Http2SubchannelConnector } from "@grpc/grpc-js/build/src/transport.js";
import http2 from "node:http2";

type Session = http2.Http2Session & {
  close: (...args: unknown[]) => void;
  destroy: (...args: unknown[]) => void;
};

/** Defers close()/destroy() calls made while this GOAWAY is dispatched (the listener's `this`). */
function deferTeardownDuringGoaway(this: http2.Http2Session): void {
  const session = this as Session;
  const { close, destroy } = session;
  session.close = (...args) => setTimeout(() => close.apply(session, args), 0);
  session.destroy = (...args) => setTimeout(() => destroy.apply(session, args), 0);
  // Scheduled before any deferred call, so later calls reach the prototype's methods directly again.
  setTimeout(() => {
    delete (session as Partial<Session>).close;
    delete (session as Partial<Session>).destroy;
  }, 0);
}

function guardSession(session: http2.Http2Session): void {
  // First, so that it also covers teardown started by grpc-js's own goaway listener.
  session.prependListener("goaway", deferTeardownDuringGoaway);
}

/**
 * Guards every session of a bound grpc-js server. Call it after bindAsync succeeded: grpc-js creates its
 * HTTP/2 servers when binding and keeps them in a private map (grpc-js is pinned in deno.json; an upgrade
 * that renames the map fails here, loudly, instead of silently bringing the crash back).
 */
export function guardServerSessions(server: grpc.Server): void {
  for (const h2 of http2ServersOf(server)) h2.on("session", guardSession);
}

/**
 * The HTTP/2 servers of a bound grpc-js server (its private `http2Servers` map), for the guard and for
 * other per-session settings (lib/csi/server.ts).
 */
export function http2ServersOf(server: grpc.Server): http2.Http2Server[] {
  const servers = (server as unknown as { http2Servers?: unknown }).http2Servers;
  if (!(servers instanceof Map) || servers.size === 0) {
    throw new Error(
      "cannot reach grpc-js's HTTP/2 servers: grpc-js no longer keeps them in Server.http2Servers; check " +
        "lib/http2-goaway-guard.ts against the grpc-js version",
    );
  }
  return [...servers.keys()] as http2.Http2Server[];
}

let clientsGuarded = false;

/** The part of grpc-js's (unexported) Http2Transport that bug 2 is about. */
interface Transport {
  disconnectHandled?: unknown;
  shutdown(): void;
}

/**
 * Wraps grpc-js's connector so that a connection whose server hung up (GOAWAY or close) before the
 * subchannel could subscribe to its disconnect counts as a failed attempt (bug 2): the subchannel backs
 * off and the calls waiting for it fail with UNAVAILABLE, as when the server refuses the connection.
 */
function guardTransports(): void {
  const prototype = Http2SubchannelConnector.prototype as {
    connect: (...args: unknown[]) => Promise<unknown>;
  };
  const connect = prototype.connect;
  prototype.connect = async function (this: unknown, ...args: unknown[]) {
    const transport = await connect.apply(this, args) as Transport;
    if (typeof transport.disconnectHandled !== "boolean") {
      transport.shutdown();
      throw new Error(
        "cannot install the HTTP/2 SETTINGS+GOAWAY guard: grpc-js's Http2Transport no longer has " +
          "disconnectHandled; check lib/http2-goaway-guard.ts against the grpc-js version",
      );
    }
    if (transport.disconnectHandled) {
      transport.shutdown();
      throw new Error("the server closed the connection as soon as it was set up (HTTP/2 GOAWAY)");
    }
    return transport;
  };
}

/**
 * Guards every HTTP/2 client session this process opens from now on (grpc-js channels included), by
 * wrapping `http2.connect` (bug 1) and grpc-js's subchannel connector (bug 2). Idempotent.
 */
export function guardClientSessions(): void {
  if (clientsGuarded) return;
  clientsGuarded = true;
  guardTransports();
  const connect = http2.connect as (...args: unknown[]) => http2.ClientHttp2Session;
  (http2 as { connect: unknown }).connect = (...args: unknown[]) => {
    const session = connect(...args);
    guardSession(session);
    // grpc-js removes every listener of a new session when its SETTINGS arrive; its own once() listener
    // is registered right after connect() returns, so one registered a microtask later runs after it.
    queueMicrotask(() => session.once("remoteSettings", () => guardSession(session)));
    return session;
  };
}
