/**
 * The CSI gRPC server on kubelet's unix socket: registers the Identity, Node and Controller services, turns
 * every failure into a gRPC status (DriverError keeps its code, anything else is INTERNAL, and a publish
 * answers final codes only: lib/csi/codes.ts), logs each call, and shuts down gracefully.
 */
import * as grpc from "@grpc/grpc-js";
import { DriverError, GrpcStatus, grpcStatusName, invalidArgument, messageOf } from "../errors.ts";
import { guardServerSessions, http2ServersOf } from "../http2-goaway-guard.ts";
import type { Logger } from "../log.ts";
import { csiServices, invalidUtf8Field } from "../proto.ts";
import type { VolumeService } from "../volume/ports.ts";
import { publishFailureCode } from "./codes.ts";
import { controllerHandlers } from "./controller.ts";
import { prepareSocketPath, removeSocket } from "../unix-socket.ts";
import { parseEndpoint } from "./endpoint.ts";
import { identityHandlers } from "./identity.ts";
import { nodeHandlers } from "./node.ts";

/**
 * Owner-only socket. kubelet and node-driver-registrar connect as root, the user the driver runs as; no
 * other local user has any business sending NodePublishVolume requests (they carry pod tokens and secrets).
 */
export const SOCKET_MODE = 0o600;

/** How long shutdown lets in-flight calls finish before closing their connections. */
export const DEFAULT_GRACE_MS = 10_000;

/**
 * A connection that has not sent the HTTP/2 preface (and its SETTINGS) by then is closed, as grpc-go's
 * server does (its ConnectionTimeout); otherwise anyone who can open the socket can hold connections open
 * forever.
 */
export const PREFACE_TIMEOUT_MS = 120_000;

/** What the CSI server is built from. */
export interface CsiServerOptions {
  /** `--endpoint`, e.g. `unix:///csi/csi.sock`. */
  endpoint: string;
  driverName: string;
  version: string;
  nodeId: string;
  volumes: VolumeService;
  log: Logger;
  /** Readiness reported by Probe; ready when absent. */
  ready?: () => Promise<boolean>;
  /** PREFACE_TIMEOUT_MS unless a test shortens it; not a user setting. */
  prefaceTimeoutMs?: number;
}

/** A running CSI server. */
export interface CsiServer {
  /** The absolute path of the unix socket it listens on. */
  socketPath: string;
  /**
   * Stops accepting calls, lets in-flight calls finish for up to `graceMs` (default 10 s), then closes the
   * remaining connections and removes the socket file. Calling it again returns the same promise.
   */
  shutdown(graceMs?: number): Promise<void>;
}

// deno-lint-ignore no-explicit-any
type Handler = (request: any) => Promise<unknown>;

/** Request fields that identify a call in logs; volume_context and secrets are never logged. */
const LOGGED_FIELDS = ["volume_id", "target_path", "staging_target_path", "volume_path"] as const;

function callFields(request: unknown): Record<string, string> {
  const fields: Record<string, string> = {};
  if (typeof request !== "object" || request === null) return fields;
  for (const key of LOGGED_FIELDS) {
    const value = (request as Record<string, unknown>)[key];
    if (typeof value === "string" && value !== "") fields[key] = value;
  }
  return fields;
}

/** The status `method` fails with: a DriverError keeps its code (final codes only for a publish). */
function toStatus(method: string, err: unknown): { code: grpc.status; details: string } {
  if (!(err instanceof DriverError)) return { code: GrpcStatus.INTERNAL, details: messageOf(err) };
  const code = method === "NodePublishVolume" ? publishFailureCode(err.code) : err.code;
  return { code, details: err.message };
}

/** Wraps each handler as a grpc-js unary call with error mapping and per-call logging. */
function unaryImplementation(
  service: string,
  handlers: Record<string, Handler>,
  log: Logger,
): grpc.UntypedServiceImplementation {
  const implementation: grpc.UntypedServiceImplementation = {};
  for (const [name, handler] of Object.entries(handlers)) {
    const method = `/csi.v1.${service}/${name}`;
    implementation[name] = async (
      call: grpc.ServerUnaryCall<unknown, unknown>,
      callback: grpc.sendUnaryData<unknown>,
    ) => {
      const started = performance.now();
      const fields = { method, ...callFields(call.request) };
      try {
        const invalid = invalidUtf8Field(call.request);
        // Decoded lossily, the string would name another path or key than kubelet sent (lib/proto.ts).
        if (invalid !== undefined) {
          throw invalidArgument(`${invalid} in the ${name} request is not valid UTF-8`);
        }
        const response = await handler(call.request);
        log.info("gRPC call", { ...fields, durationMs: Math.round(performance.now() - started) }, 2);
        callback(null, response);
      } catch (err) {
        const { code, details } = toStatus(name, err);
        log.error("gRPC call failed", {
          ...fields,
          code: grpcStatusName(code),
          error: details,
          durationMs: Math.round(performance.now() - started),
        });
        callback({ code, details });
      }
    };
  }
  return implementation;
}

function bind(server: grpc.Server, socketPath: string): Promise<void> {
  return new Promise((resolve, reject) => {
    server.bindAsync(`unix:${socketPath}`, grpc.ServerCredentials.createInsecure(), (err) => {
      if (err) reject(new Error(`cannot listen on ${socketPath}: ${err.message}`, { cause: err }));
      else resolve();
    });
  });
}

/** Closes every connection to `server` that has not sent its HTTP/2 preface within `timeoutMs`. */
function closeSilentConnections(server: grpc.Server, timeoutMs: number, log: Logger): void {
  for (const h2 of http2ServersOf(server)) {
    // Deno emits `session` as the connection is accepted and `remoteSettings` once the preface arrived.
    h2.on("session", (session) => {
      const timer = setTimeout(() => {
        log.info("closing a CSI connection that sent no HTTP/2 preface", { timeoutMs }, 2);
        session.destroy();
      }, timeoutMs);
      Deno.unrefTimer(timer);
      const settled = () => clearTimeout(timer);
      session.once("remoteSettings", settled);
      session.once("close", settled);
    });
  }
}

/** Closes `server`, forcing it closed when in-flight calls outlast `graceMs`. */
async function stop(server: grpc.Server, graceMs: number, log: Logger): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const drained = new Promise<boolean>((resolve) => server.tryShutdown(() => resolve(true)));
  const expired = new Promise<boolean>((resolve) => {
    timer = setTimeout(() => resolve(false), graceMs);
  });
  const graceful = await Promise.race([drained, expired]);
  clearTimeout(timer);
  if (!graceful) {
    log.warn("in-flight CSI calls did not finish in time; closing their connections", { graceMs });
    server.forceShutdown();
  }
}

/** Starts the CSI server on the `--endpoint` socket; resolves once it accepts connections. */
export async function startCsiServer(options: CsiServerOptions): Promise<CsiServer> {
  const { log } = options;
  const socketPath = parseEndpoint(options.endpoint);
  await prepareSocketPath(socketPath);

  const services = csiServices();
  const server = new grpc.Server();
  server.addService(
    services.Identity.service,
    unaryImplementation("Identity", identityHandlers(options), log),
  );
  server.addService(services.Node.service, unaryImplementation("Node", nodeHandlers(options), log));
  server.addService(
    services.Controller.service,
    unaryImplementation("Controller", controllerHandlers(), log),
  );

  try {
    await bind(server, socketPath);
    // Deno 2.9.6 can crash when a client that made many calls hangs up (denoland/deno#36788).
    guardServerSessions(server);
    closeSilentConnections(server, options.prefaceTimeoutMs ?? PREFACE_TIMEOUT_MS, log);
    await Deno.chmod(socketPath, SOCKET_MODE);
  } catch (err) {
    server.forceShutdown();
    await removeSocket(socketPath);
    throw err;
  }
  log.info("listening for CSI calls", {
    socket: socketPath,
    driver: options.driverName,
    node: options.nodeId,
  });

  let stopped: Promise<void> | undefined;
  return {
    socketPath,
    shutdown: (graceMs = DEFAULT_GRACE_MS) =>
      stopped ??= stop(server, graceMs, log).then(async () => {
        await removeSocket(socketPath);
        log.info("CSI server stopped", { socket: socketPath });
      }),
  };
}
