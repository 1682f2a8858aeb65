/**
 * Runs the peers of the interop tests as child processes: the grpc-go provider and kubelet stand-ins
 * (built by tests/support/go-peers.ts) and the driver itself through its CLI (the production bundle,
 * tests/support/program.ts). Every process is
 * stopped and its pipes drained by `stop()`, so Deno's sanitizers see nothing left behind.
 */
import { waitUntilListening } from "../../lib/unix-socket.ts";
import { driverArgs } from "../support/program.ts";

/** A child process that serves something on a unix socket. */
export interface Server {
  socket: string;
  /** Everything the process wrote on stderr so far (the Go provider logs one JSON line per call). */
  stderr(): string;
  /** SIGTERM, then waits for the exit and for its pipes to close. */
  stop(): Promise<void>;
}

/** Options of the Go provider stand-in (flags of tests/interop/go/provider/main.go). */
export interface GoProviderOptions {
  filesDir?: string;
  /** path → contents, served with -file-mode. */
  files?: Record<string, string>;
  echo?: boolean;
  errorCode?: string;
  grpcCode?: number;
  /** Go duration, e.g. "30s". */
  delay?: string;
  runtimeName?: string;
}

/** Starts the Go provider on `socket` and waits until it listens. */
export async function startGoProvider(
  bin: string,
  socket: string,
  options: GoProviderOptions = {},
): Promise<Server> {
  const args = ["-socket", socket];
  if (options.filesDir) args.push("-files-dir", options.filesDir);
  for (const [path, contents] of Object.entries(options.files ?? {})) {
    args.push("-file", `${path}=${contents}`);
  }
  if (options.echo === false) args.push("-echo=false");
  if (options.errorCode) args.push("-error-code", options.errorCode);
  if (options.grpcCode) args.push("-grpc-code", String(options.grpcCode));
  if (options.delay) args.push("-delay", options.delay);
  if (options.runtimeName) args.push("-runtime-name", options.runtimeName);
  const server = spawnServer(bin, args, socket);
  try {
    // The provider prints {"ready":true} once it listens.
    await server.firstLine();
  } catch (err) {
    await server.stop();
    throw err;
  }
  return server;
}

/** Options of `main.ts node` in standalone mode (`--spc-dir`, no cluster). */
export interface DriverOptions {
  endpointSocket: string;
  nodeId: string;
  providerVolume: string;
  spcDir: string;
  extraArgs?: string[];
}

/** Starts the driver (`node ...`) and waits until its CSI socket exists. */
export async function startDriver(options: DriverOptions): Promise<Server> {
  const args = driverArgs([
    "node",
    "--endpoint",
    `unix://${options.endpointSocket}`,
    "--nodeid",
    options.nodeId,
    "--provider-volume",
    options.providerVolume,
    "--spc-dir",
    options.spcDir,
    // Tests run in parallel: an ephemeral port instead of the default :8095.
    "--metrics-addr=127.0.0.1:0",
    ...(options.extraArgs ?? []),
  ]);
  const server = spawnServer(Deno.execPath(), args, options.endpointSocket);
  await waitForSocket(server, options.endpointSocket);
  return server;
}

/** Starts the embedded local provider (`provider local`); it serves `<providerVolume>/local.sock`. */
export async function startLocalProvider(providerVolume: string, root: string): Promise<Server> {
  const socket = `${providerVolume}/local.sock`;
  const args = driverArgs(["provider", "local", "--provider-volume", providerVolume, "--root", root]);
  const server = spawnServer(Deno.execPath(), args, socket);
  await waitForSocket(server, socket);
  return server;
}

/** One call the kubelet stand-in made, as it printed it. */
export interface KubeletCall {
  call: string;
  ok: boolean;
  response?: Record<string, unknown>;
  /** gRPC code name, e.g. "InvalidArgument". */
  code?: string;
  codeNumber?: number;
  message?: string;
}

export type KubeletDial = "kubelet" | "kubelet-legacy" | "grpc-escaped" | "unix";

/** Flags of the kubelet stand-in (tests/interop/go/kubelet/main.go). */
export interface KubeletOptions {
  /** Which :authority the stand-in sends (see tests/interop/go/kubelet/main.go); "kubelet" by default. */
  dial?: KubeletDial;
  targetPath?: string;
  volumeId?: string;
  spc?: string;
  podName?: string;
  podNamespace?: string;
  podUid?: string;
  serviceAccount?: string;
  readonly?: boolean;
  secrets?: Record<string, string>;
  attributes?: Record<string, string>;
}

/** Runs one step of the kubelet stand-in against the driver's socket and returns its calls. */
export async function runKubelet(
  bin: string,
  socket: string,
  step: "identity" | "publish" | "unpublish" | "lifecycle",
  options: KubeletOptions = {},
): Promise<{ exitCode: number; calls: KubeletCall[]; stderr: string }> {
  const args = ["-endpoint", `unix://${socket}`];
  const flags: [string, string | undefined][] = [
    ["-dial", options.dial],
    ["-target-path", options.targetPath],
    ["-volume-id", options.volumeId],
    ["-spc", options.spc],
    ["-pod-name", options.podName],
    ["-pod-namespace", options.podNamespace],
    ["-pod-uid", options.podUid],
    ["-service-account", options.serviceAccount],
  ];
  for (const [flag, value] of flags) if (value !== undefined) args.push(flag, value);
  if (options.readonly === false) args.push("-readonly=false");
  for (const [k, v] of Object.entries(options.secrets ?? {})) args.push("-secret", `${k}=${v}`);
  for (const [k, v] of Object.entries(options.attributes ?? {})) args.push("-attr", `${k}=${v}`);
  args.push(step);
  const output = await new Deno.Command(bin, { args, stdin: "null" }).output();
  const decoder = new TextDecoder();
  const calls = decoder.decode(output.stdout).split("\n").filter((l) => l.trim() !== "").map((l) =>
    JSON.parse(l) as KubeletCall
  );
  return { exitCode: output.code, calls, stderr: decoder.decode(output.stderr) };
}

interface SpawnedServer extends Server {
  /** The first stdout line; rejects when the process exits before printing one. */
  firstLine(): Promise<string>;
  exited: Promise<Deno.CommandStatus>;
}

function spawnServer(cmd: string, args: string[], socket: string): SpawnedServer {
  const child = new Deno.Command(cmd, { args, stdin: "null", stdout: "piped", stderr: "piped" }).spawn();
  let stderrText = "";
  let stdoutText = "";
  const decoder = () => new TextDecoderStream();
  const { promise: firstLine, resolve: resolveLine } = Promise.withResolvers<string>();
  const drainStdout = (async () => {
    for await (const chunk of child.stdout.pipeThrough(decoder())) {
      stdoutText += chunk;
      const newline = stdoutText.indexOf("\n");
      if (newline >= 0) resolveLine(stdoutText.slice(0, newline));
    }
  })();
  const drainStderr = (async () => {
    for await (const chunk of child.stderr.pipeThrough(decoder())) stderrText += chunk;
  })();
  const exited = child.status;
  const earlyExit = exited.then((status) => {
    throw new Error(
      `${describe(cmd, args)} exited with code ${status.code} before it was ready:\n${stderrText}`,
    );
  });
  earlyExit.catch(() => {}); // only observed through firstLine / waitForSocket
  let stopped = false;
  return {
    socket,
    firstLine: () => Promise.race([firstLine, earlyExit]),
    exited,
    stderr: () => stderrText,
    async stop() {
      if (stopped) return;
      stopped = true;
      try {
        child.kill("SIGTERM");
      } catch {
        // already exited
      }
      await exited;
      await Promise.all([drainStdout, drainStderr]);
    },
  };
}

/** Waits until something listens on `socket`, failing with the process's stderr when it exits first. */
async function waitForSocket(server: SpawnedServer, socket: string): Promise<void> {
  let exited = false;
  server.exited.then(() => exited = true);
  // Generous: the first run may build the bundle.
  if (await waitUntilListening(socket, 60_000, () => exited)) return;
  await server.stop();
  throw new Error(
    `no socket at ${socket}${exited ? " (the process exited)" : " after 60s"}:\n${server.stderr()}`,
  );
}

function describe(cmd: string, args: string[]): string {
  return [cmd, ...args].join(" ");
}
