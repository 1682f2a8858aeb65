/**
 * Serves any `v1alpha1.CSIDriverProvider` implementation on a unix socket: used by the embedded `local`
 * provider and by the test provider, so both speak exactly what a real provider plugin speaks.
 */
import * as grpc from "@grpc/grpc-js";
import { DriverError, GrpcStatus, messageOf } from "../errors.ts";
import { guardServerSessions } from "../http2-goaway-guard.ts";
import { prepareSocketPath, removeSocket } from "../unix-socket.ts";
import { type Logger, silentLogger } from "../log.ts";
import { providerService } from "../proto.ts";
import type { WireMountRequest, WireMountResponse, WireVersionRequest, WireVersionResponse } from "./wire.ts";

/**
 * A provider's logic. A thrown DriverError is answered with its code and message; anything else thrown
 * becomes INTERNAL. `signal` aborts when the caller gives up (deadline, cancel) or the server closes.
 */
export interface ProviderImplementation {
  version(request: WireVersionRequest, signal: AbortSignal): Promise<WireVersionResponse>;
  mount(request: WireMountRequest, signal: AbortSignal): Promise<WireMountResponse>;
}

/** A running provider server. */
export interface ProviderServer {
  socketPath: string;
  /** Cancels calls in flight, stops listening and removes the socket file. */
  close(): Promise<void>;
}

/** How long close() lets connections wind down after cancelling calls before cutting them. */
const CLOSE_GRACE_MS = 2000;

/**
 * Listens on `socketPath` (a stale socket left by a previous run is replaced; any other file there is an
 * error) and answers Version and Mount with `impl`.
 */
export async function serveProvider(
  socketPath: string,
  impl: ProviderImplementation,
  log: Logger = silentLogger,
): Promise<ProviderServer> {
  await prepareSocketPath(socketPath);
  const inFlight = new Set<AbortController>();
  const server = new grpc.Server();
  server.addService(providerService().service, {
    Version: handler(impl.version.bind(impl), inFlight, log),
    Mount: handler(impl.mount.bind(impl), inFlight, log),
  });
  await new Promise<void>((resolve, reject) =>
    server.bindAsync(`unix:${socketPath}`, grpc.ServerCredentials.createInsecure(), (err) => {
      if (err) {
        reject(new DriverError(GrpcStatus.UNAVAILABLE, `cannot listen on ${socketPath}: ${err.message}`));
      } else resolve();
    })
  );
  // Deno 2.9.6 can crash when a client that made many calls hangs up (denoland/deno#36788).
  guardServerSessions(server);
  let closing: Promise<void> | undefined;
  return {
    socketPath,
    close: () => closing ??= shutdown(server, inFlight, socketPath),
  };
}

type UnaryHandler<Req, Res> = (
  call: grpc.ServerUnaryCall<Req, Res>,
  callback: grpc.sendUnaryData<Res>,
) => void;

function handler<Req, Res>(
  fn: (request: Req, signal: AbortSignal) => Promise<Res>,
  inFlight: Set<AbortController>,
  log: Logger,
): UnaryHandler<Req, Res> {
  return (call, callback) => {
    const abort = new AbortController();
    inFlight.add(abort);
    const onCancelled = () =>
      abort.abort(new DriverError(GrpcStatus.CANCELLED, "the caller cancelled the call"));
    call.once("cancelled", onCancelled);
    fn(call.request, abort.signal).then(
      (response) => callback(null, response),
      (err) => callback(toServiceError(err, log)),
    ).finally(() => {
      call.off("cancelled", onCancelled);
      inFlight.delete(abort);
    });
  };
}

function toServiceError(err: unknown, log: Logger): Partial<grpc.StatusObject> {
  if (err instanceof DriverError) return { code: err.code, details: err.message };
  log.error("provider call failed unexpectedly", { error: err });
  return { code: GrpcStatus.INTERNAL, details: messageOf(err) };
}

async function shutdown(
  server: grpc.Server,
  inFlight: Set<AbortController>,
  socketPath: string,
): Promise<void> {
  for (const abort of inFlight) {
    abort.abort(new DriverError(GrpcStatus.CANCELLED, "the provider is shutting down"));
  }
  await new Promise<void>((resolve) => {
    // tryShutdown waits for clients to hang up; a client holding its connection open must not stall close().
    // forceShutdown does not always run tryShutdown's callback: resolve here too, or close() could wait forever.
    const cut = setTimeout(() => {
      server.forceShutdown();
      resolve();
    }, CLOSE_GRACE_MS);
    server.tryShutdown(() => {
      clearTimeout(cut);
      resolve();
    });
  });
  await removeSocket(socketPath);
}
