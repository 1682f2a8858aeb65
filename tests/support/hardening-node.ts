/**
 * A node for the hardening tests, with the driver as a real child process (`node` of the production
 * bundle, tests/support/program.ts; standalone mode) so that a crash, a SIGKILL or a restart is what it is in production: the test runner survives it
 * and can check what was left behind. Everything lives under one temp dir that `close()` unmounts and
 * removes.
 */
import { join } from "node:path";
import { connectCsi, type CsiClient } from "../../lib/csi/client.ts";
import type { NodePublishVolumeRequest } from "../../lib/csi/node.ts";
import { guardClientSessions } from "../../lib/http2-goaway-guard.ts";
import { MNT_DETACH, sysUmount2 } from "../../lib/mount/libc.ts";
import { mountsUnder } from "../../lib/mount/mountinfo.ts";

import { driverArgs } from "./program.ts";

// The test runner is a gRPC client of processes that the tests stop: guard its sessions (see the module).
guardClientSessions();

/** A `deno run -A <script>` child whose stderr lines are collected and whose exit is watched. */
export interface ChildProcess {
  pid: number;
  /** Every stderr line so far. */
  lines: string[];
  /** Settles when the process has exited and its stderr is drained. */
  exited: Promise<Deno.CommandStatus>;
  /** The exit status, once it has exited. */
  status(): Deno.CommandStatus | undefined;
  /** Resolves with the first stderr line matching `pattern`; rejects on exit or after `timeoutMs`. */
  waitForLine(pattern: RegExp, timeoutMs?: number): Promise<string>;
  /** Sends `signal` (SIGTERM by default) unless it has exited, and waits for the exit. */
  stop(signal?: Deno.Signal): Promise<Deno.CommandStatus>;
}

/** Starts `deno run -A [denoFlags] <script> <args>`. */
export function spawnDeno(script: string, args: string[], denoFlags: string[] = []): ChildProcess {
  return spawnArgs(["run", "-A", ...denoFlags, script, ...args]);
}

/** Starts `deno <args>`, through `wrap` (e.g. into a cgroup: `[...wrap, deno, ...args]`) if given. */
function spawnArgs(args: string[], wrap: string[] = []): ChildProcess {
  const [command, ...prefix] = [...wrap, Deno.execPath()];
  const child = new Deno.Command(command, {
    args: [...prefix, ...args],
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const lines: string[] = [];
  const waiters = new Set<{ pattern: RegExp; resolve: (line: string) => void }>();
  let status: Deno.CommandStatus | undefined;
  const reading = (async () => {
    let pending = "";
    for await (const chunk of child.stderr.pipeThrough(new TextDecoderStream())) {
      const parts = (pending + chunk).split("\n");
      pending = parts.pop()!;
      for (const line of parts) {
        lines.push(line);
        for (const waiter of waiters) if (waiter.pattern.test(line)) waiter.resolve(line);
      }
    }
    if (pending !== "") lines.push(pending);
  })();
  const exited = Promise.all([child.status, reading]).then(([s]) => status = s);
  return {
    pid: child.pid,
    lines,
    exited,
    status: () => status,
    waitForLine(pattern, timeoutMs = 20_000) {
      const seen = lines.find((l) => pattern.test(l));
      if (seen) return Promise.resolve(seen);
      return new Promise((resolve, reject) => {
        const waiter = {
          pattern,
          resolve: (line: string) => {
            done();
            resolve(line);
          },
        };
        const timer = setTimeout(() => {
          done();
          reject(new Error(`no line matching ${pattern} within ${timeoutMs}ms:\n${lines.join("\n")}`));
        }, timeoutMs);
        const done = () => {
          clearTimeout(timer);
          waiters.delete(waiter);
        };
        waiters.add(waiter);
        exited.then((s) => {
          if (!waiters.has(waiter)) return;
          done();
          reject(
            new Error(`process exited (${s.code}, ${s.signal}) before ${pattern}:\n${lines.join("\n")}`),
          );
        });
      });
    },
    async stop(signal = "SIGTERM") {
      if (status === undefined) {
        try {
          child.kill(signal);
        } catch { /* exited meanwhile */ }
      }
      return await exited;
    },
  };
}

/** Starts the driver (the production bundle) with `args`, through `wrap` if given. */
export function spawnMain(args: string[], denoFlags: string[] = [], wrap: string[] = []): ChildProcess {
  return spawnArgs(driverArgs(args, denoFlags), wrap);
}

/** The driver's working directories below one temp dir. */
export interface HardeningNode {
  dir: string;
  providerDir: string;
  spcDir: string;
  /** The CSI endpoint, `unix://<dir>/csi.sock`. */
  endpoint: string;
  /** Writes SPC `name` (namespace default) for `provider` with `parameters`. */
  writeSpc(name: string, provider: string, parameters?: Record<string, string>): Promise<void>;
  /** A kubelet-shaped target path for `pod`. */
  target(pod: string): string;
  /** kubelet's NodePublishVolume for `pod` with SPC `spc`. */
  publishRequest(pod: string, spc: string): NodePublishVolumeRequest;
  /** Mount points below the temp dir. */
  mounts(): Promise<string[]>;
  /** Starts the driver (`node`) on `endpoint` and waits until it listens. */
  startDriver(extraArgs?: string[], denoFlags?: string[]): Promise<ChildProcess>;
  /** Connects a CSI client to the driver; closed by `close()` if still open. */
  connect(): CsiClient;
  /** Stops every process started here, closes clients, detaches left mounts, removes the dir. */
  close(): Promise<void>;
}

/** Creates the directories of a node. */
export async function createNode(): Promise<HardeningNode> {
  const dir = await Deno.makeTempDir({ prefix: "sscsi-hardening-" });
  const providerDir = join(dir, "providers");
  const spcDir = join(dir, "spc");
  await Deno.mkdir(providerDir);
  await Deno.mkdir(spcDir);
  const endpoint = `unix://${join(dir, "csi.sock")}`;
  const processes: ChildProcess[] = [];
  const clients: CsiClient[] = [];
  const mounts = async () => (await mountsUnder(dir)).map((m) => m.mountPoint);
  const target = (pod: string) => join(dir, "pods", pod, "volumes/kubernetes.io~csi/secrets/mount");
  return {
    dir,
    providerDir,
    spcDir,
    endpoint,
    async writeSpc(name, provider, parameters = { a: "b" }) {
      const spc = {
        apiVersion: "secrets-store.csi.x-k8s.io/v1",
        kind: "SecretProviderClass",
        metadata: { name, namespace: "default" },
        spec: { provider, parameters },
      };
      await Deno.writeTextFile(join(spcDir, `${name}.json`), JSON.stringify(spc));
    },
    target,
    publishRequest(pod, spc) {
      return {
        volume_id: `csi-${pod}`,
        target_path: target(pod),
        volume_capability: { mount: {}, access_mode: { mode: "SINGLE_NODE_READER_ONLY" } },
        readonly: true,
        volume_context: {
          secretProviderClass: spc,
          "csi.storage.k8s.io/pod.name": pod,
          "csi.storage.k8s.io/pod.namespace": "default",
          "csi.storage.k8s.io/pod.uid": `uid-${pod}`,
          "csi.storage.k8s.io/serviceAccount.name": "default",
          "csi.storage.k8s.io/ephemeral": "true",
        },
        secrets: {},
      };
    },
    mounts,
    async startDriver(extraArgs = [], denoFlags = []) {
      const driver = spawnMain([
        "node",
        "--endpoint",
        endpoint,
        "--nodeid",
        "hardening",
        "--provider-volume",
        providerDir,
        "--additional-provider-volume-paths=",
        "--spc-dir",
        spcDir,
        "--metrics-addr=127.0.0.1:0",
        // Targets are kubelet-shaped paths below the temp dir.
        `--kubelet-root-dir=${dir}`,
        ...extraArgs,
      ], denoFlags);
      processes.push(driver);
      await driver.waitForLine(/listening for CSI calls/);
      return driver;
    },
    connect() {
      const client = connectCsi(endpoint);
      clients.push(client);
      return client;
    },
    async close() {
      for (const client of clients) client.close();
      for (const process of processes.reverse()) await process.stop("SIGKILL");
      for (const mountPoint of (await mounts()).reverse()) sysUmount2(mountPoint, MNT_DETACH);
      await Deno.remove(dir, { recursive: true });
    },
  };
}
