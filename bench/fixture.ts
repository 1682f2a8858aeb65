/**
 * The bench's world: a temp dir with the secrets the embedded `local` provider serves, SecretProviderClass
 * files, the provider as a separate process, and driver processes started as the DaemonSet would (`node
 * ...`), each with a CSI gRPC client in the bench process. A driver is either the production artifact (the
 * bundle run as the compiled binary runs it, tools/production.ts) or the source (`deno run -A main.ts`).
 * Content is fixed (seeded), so every run does the same work.
 */
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { connectCsi, type CsiClient, kubeletPublishRequest } from "../lib/csi/client.ts";
import { waitUntilListening } from "../lib/unix-socket.ts";
import type { NodePublishVolumeRequest } from "../lib/csi/node.ts";
import { MNT_DETACH, sysUmount2 } from "../lib/mount/libc.ts";
import { mountsUnder } from "../lib/mount/mountinfo.ts";
import { type ProcessMemory, readProcessMemory } from "./proc.ts";
import { prodRunArgs, V8_FLAGS } from "../tools/production.ts";

/** The repository root. */
export const REPO = join(dirname(fileURLToPath(import.meta.url)), "..");
/** The driver's entry point. */
export const MAIN = join(REPO, "main.ts");

/** The volume every latency figure publishes: 3 files, 4 KiB in total, as in the issue. */
export const SMALL_FILES = [
  { object: "small/db/username", size: 512 },
  { object: "small/db/password", size: 1536 },
  { object: "small/api-token", size: 2048 },
] as const;

/** SPC names the bench publishes. */
export const SPC = { small: "bench-small", rotation: "bench-rotation" } as const;

/** Response sizes of the provider-client benchmark. */
export const LARGE_SIZES = [64 * 1024, 256 * 1024, 1024 * 1024, 2 * 1024 * 1024, 3.75 * 1024 * 1024];

/** Deterministic bytes from `seed` (mulberry32), so every run serves the same content. */
export function seededBytes(size: number, seed: number): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(size);
  let state = seed >>> 0;
  for (let i = 0; i < size; i++) {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    out[i] = ((t ^ (t >>> 14)) >>> 0) & 0xff;
  }
  return out;
}

/** The `objects` parameter of the local provider for the small volume below `prefix`. */
function smallObjects(prefix: string): string {
  return SMALL_FILES.map(({ object }) => {
    const name = object.slice("small/".length);
    const alias = name === "api-token" ? "\n  objectAlias: token" : "";
    const mode = name === "db/password" ? '\n  mode: "0400"' : "";
    return `- objectName: ${prefix}/${name}${alias}${mode}`;
  }).join("\n");
}

/** The bench's SecretProviderClass `name` (namespace default, provider local) as a Kubernetes object. */
export function spcObject(name: string, objects: string) {
  return {
    apiVersion: "secrets-store.csi.x-k8s.io/v1",
    kind: "SecretProviderClass",
    metadata: { name, namespace: "default" },
    spec: { provider: "local", parameters: { objects } },
  };
}

/** The SecretProviderClasses every bench driver publishes, as objects for the API stand-in. */
export function benchSpcObjects() {
  return [spcObject(SPC.small, smallObjects("small")), spcObject(SPC.rotation, smallObjects("rotation"))];
}

function spcYaml(name: string, objects: string): string {
  const indented = objects.split("\n").map((line) => `      ${line}`).join("\n");
  return [
    "apiVersion: secrets-store.csi.x-k8s.io/v1",
    "kind: SecretProviderClass",
    `metadata:\n  name: ${name}\n  namespace: default`,
    "spec:\n  provider: local\n  parameters:\n    objects: |",
    indented,
    "",
  ].join("\n");
}

/** The last lines a child wrote on stderr, for error messages. */
class Tail {
  readonly #lines: string[] = [];
  readonly done: Promise<void>;

  constructor(stream: ReadableStream<Uint8Array>) {
    this.done = this.#drain(stream);
  }

  async #drain(stream: ReadableStream<Uint8Array>): Promise<void> {
    for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
      this.#lines.push(...chunk.split("\n").filter((l) => l !== ""));
      if (this.#lines.length > 200) this.#lines.splice(0, this.#lines.length - 40);
    }
  }

  text(): string {
    return this.#lines.slice(-40).join("\n");
  }
}

/** A child process of the bench with its stderr kept. */
export class Child {
  readonly #tail: Tail;

  #exitCode?: number;

  constructor(readonly process: Deno.ChildProcess, readonly what: string) {
    this.#tail = new Tail(process.stderr);
    process.status.then((s) => this.#exitCode = s.code);
  }

  /** The exit code once the process has exited. */
  get exitCode(): number | undefined {
    return this.#exitCode;
  }

  /** The pid of the deno process (`deno run` does not fork: this is the driver itself). */
  get pid(): number {
    return this.process.pid;
  }

  /** Resolves when something listens on `path`; rejects when the child exits first or after `timeoutMs`. */
  async waitForSocket(path: string, timeoutMs = 20_000): Promise<void> {
    if (await waitUntilListening(path, timeoutMs, () => this.#exitCode !== undefined)) return;
    throw new Error(
      `${this.what} did not create ${path}${
        this.#exitCode !== undefined ? " and exited" : ""
      }:\n${this.#tail.text()}`,
    );
  }

  /** Resident memory of the process from /proc/<pid>/status, in bytes. */
  async memory(): Promise<ProcessMemory> {
    return await readProcessMemory(this.pid);
  }

  /** Sends SIGTERM and waits for the exit (SIGKILL after 10 s). */
  async stop(): Promise<void> {
    try {
      this.process.kill("SIGTERM");
    } catch { /* already gone */ }
    const timer = setTimeout(() => {
      try {
        this.process.kill("SIGKILL");
      } catch { /* already gone */ }
    }, 10_000);
    await this.process.status;
    clearTimeout(timer);
    await this.#tail.done;
  }

  stderrTail(): string {
    return this.#tail.text();
  }
}

/** Which program a driver process runs: the production bundle (as compiled) or `deno run -A main.ts`. */
export type Program = "artifact" | "main.ts";

/** How to start a driver process. */
export interface DriverStart {
  /** Default: the artifact. */
  program?: Program;
  /** Script run instead of main.ts (source program only; it must take main.ts's arguments). */
  script?: string;
  /** Extra flags of the `node` command. */
  flags?: string[];
  /** `node`'s SecretProviderClass source flags (default `--spc-dir` of the world). */
  source?: string[];
  /** V8 flags: added to main.ts's run; for the artifact, they replace the production V8 flags. */
  v8Flags?: string[];
  env?: Record<string, string>;
  /** Source program only: `deno run` flags in place of `-A` and `v8Flags` (the heap driver's production flags). */
  runtime?: string[];
  /** Runs the deno command through this wrapper (e.g. into a memory cgroup): `[...wrap, deno, ...args]`. */
  wrap?: string[];
}

/** `deno` arguments that start `args` under `start`'s program. */
export function denoArgs(args: string[], start: DriverStart = {}): string[] {
  if ((start.program ?? "artifact") === "artifact") return prodRunArgs(args, start.v8Flags);
  const v8 = start.v8Flags?.length ? [`--v8-flags=${start.v8Flags.join(",")}`] : [];
  return ["run", ...(start.runtime ?? ["-A", ...v8]), start.script ?? MAIN, ...args];
}

/** The production V8 flags, for reports. */
export const PRODUCTION_V8_FLAGS = V8_FLAGS;

/** A running driver and a CSI client connected to it. */
export interface Driver {
  child: Child;
  client: CsiClient;
  endpoint: string;
  /** Closes the client and stops the process. */
  stop(): Promise<void>;
}

/** The temp dir, the secrets, the SPCs and the `local` provider process. */
export class World {
  #drivers = 0;
  #provider?: Child;

  private constructor(readonly dir: string) {}

  get providerDir(): string {
    return join(this.dir, "providers");
  }
  get root(): string {
    return join(this.dir, "secrets");
  }
  get spcDir(): string {
    return join(this.dir, "spc");
  }

  /** Creates the files and starts the provider. */
  static async create(): Promise<World> {
    const world = new World(await Deno.makeTempDir({ prefix: "secrets-store-csi-bench-" }));
    try {
      await world.#writeFiles();
      await world.#startProvider();
      return world;
    } catch (err) {
      await world.close();
      throw err;
    }
  }

  async #startProvider(): Promise<void> {
    const socket = join(this.providerDir, "local.sock");
    await Deno.remove(socket).catch(() => {});
    this.#provider = this.spawn(
      ["provider", "local", "--provider-volume", this.providerDir, "--root", this.root],
      "the local provider",
    );
    await this.#provider.waitForSocket(socket);
  }

  /**
   * Provider processes that died during the run. A grpc-js server on Deno 2.9.6 can crash in nghttp2 when
   * a client's connection goes away after concurrent calls (denoland/deno#36788); a driver exiting is such
   * a client. Each crash is recorded here and the provider restarted before the next driver starts.
   */
  readonly providerCrashes: { exitCode: number; lastLine: string }[] = [];

  /**
   * Restarts the provider if it has died, recording the crash. Call it after a provider client went away
   * (the crash follows within milliseconds), and before work that needs the provider.
   */
  async ensureProvider(): Promise<void> {
    const provider = this.#provider;
    if (!provider) return;
    await new Promise((r) => setTimeout(r, 50));
    if (provider.exitCode === undefined && await socketAnswers(join(this.providerDir, "local.sock"))) return;
    await provider.stop();
    const lines = provider.stderrTail().split("\n");
    this.providerCrashes.push({ exitCode: provider.exitCode ?? -1, lastLine: lines[lines.length - 1] ?? "" });
    await this.#startProvider();
  }

  async #writeFiles(): Promise<void> {
    for (const [i, { object, size }] of SMALL_FILES.entries()) {
      for (const prefix of ["small", "rotation"]) {
        const path = join(this.root, object.replace(/^small/, prefix));
        await Deno.mkdir(dirname(path), { recursive: true });
        await Deno.writeFile(path, seededBytes(size, 1 + i));
      }
    }
    await Deno.mkdir(join(this.root, "large"));
    for (const size of LARGE_SIZES) {
      await Deno.writeFile(join(this.root, "large", String(size)), seededBytes(size, size));
    }
    await Deno.mkdir(this.spcDir);
    await Deno.writeTextFile(
      join(this.spcDir, `${SPC.small}.yaml`),
      spcYaml(SPC.small, smallObjects("small")),
    );
    await Deno.writeTextFile(
      join(this.spcDir, `${SPC.rotation}.yaml`),
      spcYaml(SPC.rotation, smallObjects("rotation")),
    );
    await Deno.mkdir(this.providerDir);
  }

  /** Rewrites the rotation volume's files with content derived from `seed` (0: the initial content). */
  async changeRotationContent(seed: number): Promise<void> {
    for (const [i, { object, size }] of SMALL_FILES.entries()) {
      await Deno.writeFile(
        join(this.root, object.replace(/^small/, "rotation")),
        seededBytes(size, seed * 10 + 1 + i),
      );
    }
  }

  /** Starts `args` under `start`'s program (default: the artifact) with stderr kept. */
  spawn(args: string[], what: string, start: DriverStart = {}): Child {
    const [command, ...prefix] = [...(start.wrap ?? []), Deno.execPath()];
    const process = new Deno.Command(command, {
      args: [...prefix, ...denoArgs(args, start)],
      cwd: REPO,
      stdin: "null",
      stdout: "null",
      stderr: "piped",
      env: start.env,
    }).spawn();
    return new Child(process, what);
  }

  /** The arguments of `node` for a driver listening on `endpoint`, as the notes prescribe. */
  nodeArgs(endpoint: string, flags: string[] = [], source = ["--spc-dir", this.spcDir]): string[] {
    return [
      "node",
      "--endpoint",
      endpoint,
      "--nodeid",
      "bench",
      "--provider-volume",
      this.providerDir,
      "--additional-provider-volume-paths=",
      ...source,
      // Metrics on as in the DaemonSet, on a free port so that drivers and tests never collide.
      "--metrics-addr=127.0.0.1:0",
      // Targets are kubelet-shaped paths below the bench's directory.
      `--kubelet-root-dir=${this.dir}`,
      ...flags,
    ];
  }

  /** A fresh socket path for the next driver. */
  nextEndpoint(): string {
    return `unix://${join(this.dir, `csi-${++this.#drivers}.sock`)}`;
  }

  /** Starts a driver process, waits for its socket and connects a CSI client. */
  async startDriver(start: DriverStart = {}): Promise<Driver> {
    await this.ensureProvider();
    const endpoint = this.nextEndpoint();
    const child = this.spawn(this.nodeArgs(endpoint, start.flags, start.source), "the driver", start);
    try {
      await child.waitForSocket(endpoint.slice("unix://".length));
    } catch (err) {
      await child.stop();
      throw err;
    }
    const client = connectCsi(endpoint);
    return {
      child,
      client,
      endpoint,
      stop: async () => {
        client.close();
        await child.stop();
        await this.ensureProvider();
      },
    };
  }

  /** A kubelet-shaped target path for `pod`. */
  target(pod: string): string {
    return join(this.dir, "pods", pod, "volumes/kubernetes.io~csi/secrets/mount");
  }

  /** The NodePublishVolume request kubelet sends for `pod`'s inline volume of SPC `spc`. */
  publishRequest(pod: string, spc: string = SPC.small): NodePublishVolumeRequest {
    return kubeletPublishRequest({ pod, targetPath: this.target(pod), spc });
  }

  /** Mount points below the temp dir. */
  async mounts(): Promise<string[]> {
    return (await mountsUnder(this.dir)).map((m) => m.mountPoint);
  }

  /** Stops the provider, detaches every mount left below the temp dir and removes it. */
  async close(): Promise<void> {
    await this.#provider?.stop();
    for (const mountPoint of (await this.mounts()).reverse()) sysUmount2(mountPoint, MNT_DETACH);
    await Deno.remove(this.dir, { recursive: true });
  }
}

/** True when something accepts connections on the unix socket at `path`. */
async function socketAnswers(path: string): Promise<boolean> {
  try {
    (await Deno.connect({ transport: "unix", path })).close();
    return true;
  } catch {
    return false;
  }
}

/** Runs `work` for each of `items` with at most `limit` in flight; resolves with the results in order. */
export async function pool<T, R>(
  items: readonly T[],
  limit: number,
  work: (item: T) => Promise<R>,
): Promise<R[]> {
  const results: R[] = new Array(items.length);
  let next = 0;
  const lane = async () => {
    while (next < items.length) {
      const i = next++;
      results[i] = await work(items[i]);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, lane));
  return results;
}
