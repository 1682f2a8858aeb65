/** The HTTP endpoint on --metrics-addr: GET /metrics (Prometheus text) and GET /healthz. */
import { DriverError, GrpcStatus, messageOf } from "./errors.ts";
import type { Logger } from "./log.ts";
import type { Registry } from "prom-client";
import { EXPOSITION_CONTENT_TYPE } from "./metrics.ts";

export interface MetricsServer {
  /** The port actually bound (useful with port 0). */
  port: number;
  close(): Promise<void>;
}

/**
 * Parses Go's listen address forms: ":8095", "0.0.0.0:8095", "[::1]:8095", "localhost:0". (lib/config.ts
 * has already turned controller-runtime's "0", metrics off, and "", its :8080, into what they mean.)
 */
export function parseListenAddress(addr: string): { hostname: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d{1,5})$/.exec(addr);
  const port = m ? Number(m[3]) : NaN;
  if (!m || port > 65535) {
    throw new DriverError(
      GrpcStatus.INVALID_ARGUMENT,
      `--metrics-addr ${JSON.stringify(addr)} is not a listen address such as :8095 or 127.0.0.1:8095`,
    );
  }
  return { hostname: m[1] ?? (m[2] || "0.0.0.0"), port };
}

/**
 * Serves the registry and a health check. `healthy` answers /healthz: 200 while the CSI socket serves, 503
 * otherwise (for setups without the livenessprobe sidecar).
 */
export function startMetricsServer(
  addr: string,
  registry: Registry,
  healthy: () => Promise<boolean>,
  log: Logger,
): MetricsServer {
  const { hostname, port } = parseListenAddress(addr);
  // Go listens on every address, IPv4 and IPv6, for ":8095": so does "::" (dual-stack on Linux); a node
  // without IPv6 gets IPv4 only.
  const anyHost = /^:\d+$/.test(addr);
  let server: Deno.HttpServer<Deno.NetAddr>;
  const serve = (host: string) =>
    Deno.serve({ hostname: host, port, onListen: () => {} }, async (request) => {
      const path = new URL(request.url).pathname;
      if (request.method !== "GET") return new Response("method not allowed\n", { status: 405 });
      if (path === "/metrics") {
        return new Response(await registry.metrics(), {
          headers: { "content-type": EXPOSITION_CONTENT_TYPE },
        });
      }
      if (path === "/healthz") {
        const ok = await healthy().catch(() => false);
        return new Response(ok ? "ok\n" : "CSI socket is not serving\n", { status: ok ? 200 : 503 });
      }
      return new Response("not found\n", { status: 404 });
    });
  try {
    try {
      server = serve(anyHost ? "::" : hostname);
    } catch (err) {
      if (!anyHost || err instanceof Deno.errors.AddrInUse) throw err;
      server = serve(hostname);
    }
  } catch (err) {
    throw new DriverError(
      GrpcStatus.FAILED_PRECONDITION,
      `cannot listen on --metrics-addr ${addr}: ${messageOf(err)}`,
    );
  }
  log.info("serving metrics", {
    addr: `${server.addr.hostname === "::" ? "[::]" : server.addr.hostname}:${server.addr.port}`,
  });
  return { port: server.addr.port, close: () => server.shutdown() };
}
