/**
 * `--enable-pprof`: what an operator needs pprof for, in V8's formats, on 127.0.0.1:<pprof-port> only.
 * Deno has no pprof; upstream serves Go's on every interface.
 *
 *   GET /debug/pprof/                      index of the endpoints below
 *   GET /debug/pprof/heap                  a V8 heap snapshot (.heapsnapshot; Chrome DevTools > Memory)
 *   GET /debug/pprof/profile?seconds=N     a CPU profile over N seconds, default 30, at most 300
 *                                          (.cpuprofile; Chrome DevTools > Performance, or speedscope)
 *
 * A heap snapshot holds whatever is in memory, secret contents included: treat the file as a secret.
 * That is also why the server never listens beyond loopback (reach it with `kubectl port-forward`).
 */
import { Session } from "node:inspector";
import { getHeapSnapshot } from "node:v8";
import { Readable } from "node:stream";
import { DriverError, GrpcStatus, messageOf } from "./errors.ts";
import type { Logger } from "./log.ts";

const DEFAULT_PROFILE_SECONDS = 30;
const MAX_PROFILE_SECONDS = 300;

export interface ProfilingServer {
  port: number;
  close(): Promise<void>;
}

const INDEX = `secrets-store-csi profiling (V8 formats, not pprof)
/debug/pprof/heap                   V8 heap snapshot (.heapsnapshot): holds secret contents, keep it safe
/debug/pprof/profile?seconds=30     V8 CPU profile (.cpuprofile) over the given seconds (1..${MAX_PROFILE_SECONDS})
`;

/** One CPU profile at a time: V8 has one profiler per isolate. */
let profiling = false;

async function cpuProfile(seconds: number): Promise<string> {
  const session = new Session();
  session.connect();
  const post = <T>(method: string) =>
    new Promise<T>((resolve, reject) =>
      session.post(method, {}, (err, result) => err ? reject(err) : resolve(result as T))
    );
  try {
    await post("Profiler.enable");
    await post("Profiler.start");
    await new Promise((resolve) => setTimeout(resolve, seconds * 1000));
    const { profile } = await post<{ profile: unknown }>("Profiler.stop");
    return JSON.stringify(profile);
  } finally {
    session.disconnect();
  }
}

function attachment(name: string): Record<string, string> {
  const stamp = new Date().toISOString().replace(/[:.]/g, "-");
  return { "content-disposition": `attachment; filename="secrets-store-csi-${stamp}.${name}"` };
}

async function handle(request: Request): Promise<Response> {
  const url = new URL(request.url);
  if (request.method !== "GET") return new Response("method not allowed\n", { status: 405 });
  if (url.pathname === "/debug/pprof/" || url.pathname === "/debug/pprof") return new Response(INDEX);
  if (url.pathname === "/debug/pprof/heap") {
    const body = Readable.toWeb(getHeapSnapshot()) as ReadableStream<Uint8Array>;
    return new Response(body, {
      headers: { "content-type": "application/json", ...attachment("heapsnapshot") },
    });
  }
  if (url.pathname === "/debug/pprof/profile") {
    const text = url.searchParams.get("seconds") ?? String(DEFAULT_PROFILE_SECONDS);
    const seconds = Number(text);
    if (!/^\d+(\.\d+)?$/.test(text) || seconds <= 0 || seconds > MAX_PROFILE_SECONDS) {
      return new Response(`seconds must be a number above 0 and at most ${MAX_PROFILE_SECONDS}\n`, {
        status: 400,
      });
    }
    if (profiling) return new Response("a CPU profile is already being taken\n", { status: 409 });
    profiling = true;
    try {
      return new Response(await cpuProfile(seconds), {
        headers: { "content-type": "application/json", ...attachment("cpuprofile") },
      });
    } finally {
      profiling = false;
    }
  }
  return new Response("not found\n", { status: 404 });
}

/** Serves the profiling endpoints on 127.0.0.1:`port` (0 picks a free port, for tests). */
export function startProfilingServer(port: number, log: Logger): ProfilingServer {
  let server: Deno.HttpServer<Deno.NetAddr>;
  try {
    server = Deno.serve({ hostname: "127.0.0.1", port, onListen: () => {} }, handle);
  } catch (err) {
    throw new DriverError(
      GrpcStatus.FAILED_PRECONDITION,
      `cannot listen on 127.0.0.1:${port} for --enable-pprof: ${messageOf(err)}`,
    );
  }
  log.info("serving profiles", { addr: `127.0.0.1:${server.addr.port}` });
  return { port: server.addr.port, close: () => server.shutdown() };
}
