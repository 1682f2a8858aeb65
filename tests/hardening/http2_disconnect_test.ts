/**
 * Regression tests for two ways a GOAWAY breaks Deno 2.9.6's `node:http2` (lib/http2-goaway-guard.ts).
 *
 * A server that answers a new connection with SETTINGS and at once GOAWAY froze the whole driver: grpc-js
 * missed the disconnect, kept its subchannel READY on the dead session and retried every call on it in a
 * microtask busy loop (one core at 100 %, memory growing, Probe and /healthz unanswered). Without the
 * guard, the first publish against such a socket never returned.
 *
 * denoland/deno#36788: on Deno 2.9.6 a `node:http2` session that receives a GOAWAY
 * after a few dozen streams crashes the whole process (nghttp2 assertion, `free(): invalid pointer` or a
 * segfault). Every grpc-js peer sends a GOAWAY when it closes a channel or shuts a server down, so without
 * lib/http2-goaway-guard.ts the driver dies when a CSI client hangs up after a burst, the `local` provider
 * dies when a driver exits, and the driver dies when a provider restarts. Measured without the guard: the
 * peer under test crashed in nearly every run of each test below; with it, in none.
 *
 * The peer under test always runs in a child process, so a crash fails the test instead of killing the
 * test runner.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { status } from "@grpc/grpc-js";
import type { CsiClient } from "../../lib/csi/client.ts";
import { silentLogger } from "../../lib/log.ts";
import { ProviderClient } from "../../lib/provider/client.ts";
import { type ChildProcess, createNode, type HardeningNode, spawnMain } from "../support/hardening-node.ts";
import { startProviderProcess } from "../support/hardening-provider.ts";
import { requireRoot } from "../support/root.ts";
import { grpcFailure } from "../support/driver.ts";

/** Rounds of burst-then-disconnect; without the guard the first few rounds crash the peer. */
const ROUNDS = 20;
/**
 * Calls per connection: the crash needs a few dozen streams on the session; the CSI server crashed within
 * 3 rounds of 110 calls, the `local` provider (slower calls) within 20 rounds of 300.
 */
const CALLS = 300;
const IN_FLIGHT = 32;

/** Runs `count` calls of `call`, `limit` at a time. */
async function burst(count: number, limit: number, call: (i: number) => Promise<unknown>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: limit }, async () => {
    while (next < count) await call(next++);
  }));
}

function assertAlive(process: ChildProcess, what: string, round: number): void {
  const status = process.status();
  if (status) {
    const tail = process.lines.slice(-3).join("\n");
    assert.fail(`${what} died by round ${round}: exit ${status.code}, signal ${status.signal}\n${tail}`);
  }
}

/** Runs one round; when it fails because `process` died, says so rather than showing the call error. */
async function round(process: ChildProcess, what: string, n: number, fn: () => Promise<void>): Promise<void> {
  try {
    await fn();
  } catch (err) {
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([process.exited, new Promise((r) => timer = setTimeout(r, 2000))]);
    clearTimeout(timer);
    assertAlive(process, what, n);
    throw err;
  }
  assertAlive(process, what, n);
}

async function withNode(fn: (node: HardeningNode) => Promise<void>): Promise<void> {
  const node = await createNode();
  try {
    await fn(node);
  } finally {
    await node.close();
  }
}

/** Cheap CSI calls that reach the Node and Identity services without mounting anything. */
const CSI_CALLS: ((c: CsiClient) => Promise<unknown>)[] = [
  (c) => c.getPluginInfo(),
  (c) => c.probe(),
  (c) => c.nodeGetInfo(),
  (c) => c.nodeGetCapabilities(),
  (c) =>
    c.nodeStageVolume({
      volume_id: "v",
      staging_target_path: "/staging",
      volume_capability: { mount: {}, access_mode: { mode: "SINGLE_NODE_READER_ONLY" } },
    }),
];

Deno.test("the driver survives CSI clients that hang up after bursts of calls", () =>
  withNode(async (node) => {
    const driver = await node.startDriver();
    for (let n = 1; n <= ROUNDS; n++) {
      await round(driver, "the driver", n, async () => {
        const client = node.connect();
        await burst(CALLS, IN_FLIGHT, (i) => CSI_CALLS[i % CSI_CALLS.length](client));
        client.close();
      });
    }
    // A crash follows the hang-up within milliseconds: a fresh client's call proves the driver serves on.
    await round(driver, "the driver", ROUNDS + 1, async () => {
      const client = node.connect();
      assert.equal((await client.nodeGetInfo()).node_id, "hardening");
      client.close();
    });
  }));

Deno.test("the local provider survives provider clients that hang up after bursts of Mount calls", () =>
  withNode(async (node) => {
    const root = join(node.dir, "root");
    await Deno.mkdir(root);
    await Deno.writeTextFile(join(root, "password"), "s3cr3t");
    const provider = spawnMain(["provider", "local", "--provider-volume", node.providerDir, "--root", root]);
    try {
      await provider.waitForLine(/local provider listening/);
      const request = {
        attributes: JSON.stringify({ objects: "- objectName: password" }),
        secrets: "{}",
        targetPath: "/unused",
        permission: "420",
        currentObjectVersion: [],
      };
      const ctx = { pod: "burst", namespace: "default", timeoutMs: 10_000 };
      for (let n = 1; n <= ROUNDS + 1; n++) {
        await round(provider, "the local provider", n, async () => {
          const client = new ProviderClient({
            dirs: [node.providerDir],
            driverVersion: "test",
            log: silentLogger,
          });
          try {
            // The last round only checks that the provider still answers.
            const calls = n > ROUNDS ? 1 : CALLS;
            await burst(calls, Math.min(calls, IN_FLIGHT), async () => {
              const response = await client.mount("local", request, ctx);
              assert.equal(new TextDecoder().decode(response.files[0].contents), "s3cr3t");
            });
          } finally {
            client.close();
          }
        });
      }
    } finally {
      await provider.stop();
    }
  }));

Deno.test("the driver survives a provider that shuts down gracefully after bursts of publishes", () =>
  withNode(async (node) => {
    requireRoot();
    const socket = join(node.providerDir, "burst.sock");
    await node.writeSpc("spc-burst", "burst");
    const driver = await node.startDriver();
    const client = node.connect();
    const rounds = 8;
    const pods = 40;
    for (let n = 1; n <= rounds + 1; n++) {
      // The round after the last only checks that the driver still publishes.
      const names = Array.from({ length: n > rounds ? 1 : pods }, (_, i) => `pod-${n}-${i}`);
      const provider = await startProviderProcess({ socket });
      try {
        await round(driver, "the driver", n, async () => {
          await burst(
            names.length,
            16,
            (i) => client.nodePublishVolume(node.publishRequest(names[i], "spc-burst")),
          );
          await burst(
            names.length,
            16,
            (i) =>
              client.nodeUnpublishVolume({
                volume_id: `csi-${names[i]}`,
                target_path: node.target(names[i]),
              }),
          );
        });
      } finally {
        // SIGTERM: the provider closes its server, which sends the driver's channel a GOAWAY.
        const status = await provider.stop();
        assert.equal(status.code, 0, `the provider did not exit cleanly:\n${provider.lines.join("\n")}`);
      }
    }
    assert.deepEqual(await node.mounts(), []);
  }));

/** One HTTP/2 frame (RFC 9113 §4.1). */
function frame(type: number, streamId: number, payload: Uint8Array): Uint8Array {
  const bytes = new Uint8Array(9 + payload.length);
  const view = new DataView(bytes.buffer);
  view.setUint32(0, payload.length << 8); // 24-bit length, then the type byte (overwritten next)
  bytes[3] = type;
  bytes[4] = 0; // flags
  view.setUint32(5, streamId);
  bytes.set(payload, 9);
  return bytes;
}

const SETTINGS = 0x4;
const GOAWAY = 0x7;

function goaway(lastStreamId: number, errorCode: number): Uint8Array {
  const payload = new Uint8Array(8);
  new DataView(payload.buffer).setUint32(0, lastStreamId);
  new DataView(payload.buffer).setUint32(4, errorCode);
  return frame(GOAWAY, 0, payload);
}

/**
 * A "provider" socket that answers each connection's preface with an empty SETTINGS and a GOAWAY, then
 * reads on until the client hangs up. Returns a function that stops it.
 */
function serveSettingsThenGoaway(path: string, lastStreamId: number, errorCode: number): () => Promise<void> {
  const listener = Deno.listen({ transport: "unix", path });
  const conns = new Set<Deno.Conn>();
  const accepting = (async () => {
    for await (const conn of listener) {
      conns.add(conn);
      (async () => {
        const buffer = new Uint8Array(64 * 1024);
        try {
          await conn.read(buffer); // the client preface
          await conn.write(frame(SETTINGS, 0, new Uint8Array()));
          await conn.write(goaway(lastStreamId, errorCode));
          while (await conn.read(buffer) !== null) { /* discard */ }
        } catch { /* the client hung up */ }
        conns.delete(conn);
      })();
    }
  })();
  return async () => {
    listener.close();
    await accepting;
    for (const conn of conns) {
      try {
        conn.close();
      } catch { /* closed meanwhile */ }
    }
  };
}

/** `call`, or a failure naming `what` when it takes longer than `ms` (a wedged driver never answers). */
async function within<T>(ms: number, what: string, call: Promise<T>): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not return within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([call, expired]);
  } finally {
    clearTimeout(timer);
  }
}

for (const [lastStreamId, errorCode] of [[0x7fffffff, 0], [0, 2]]) {
  Deno.test(
    `a provider socket that answers with SETTINGS then GOAWAY(last stream ${lastStreamId}, code ${errorCode}) ` +
      "fails that publish only",
    () =>
      withNode(async (node) => {
        requireRoot();
        await node.writeSpc("spc-goaway", "goaway");
        await node.writeSpc("spc-good", "good");
        const stop = serveSettingsThenGoaway(join(node.providerDir, "goaway.sock"), lastStreamId, errorCode);
        const good = await startProviderProcess({ socket: join(node.providerDir, "good.sock") });
        try {
          const driver = await node.startDriver(["--provider-timeout=4s"]);
          const client = node.connect();
          for (let attempt = 1; attempt <= 5; attempt++) {
            const pod = `goaway-${attempt}`;
            await round(driver, "the driver", attempt, async () => {
              const publish = grpcFailure(client.nodePublishVolume(node.publishRequest(pod, "spc-goaway")));
              // While that publish is failing, the driver answers other calls: a wedged one never does.
              await within(2_000, "Probe during the publish", client.probe());
              const err = await within(20_000, `publish ${attempt}`, publish);
              assert.equal(err.code, status.UNKNOWN, err.details);
              // When the GOAWAY arrives with the SETTINGS, the connection counts as refused; when it arrives
              // after the request went out, GOAWAY(last stream 2^31-1) promised an answer: the deadline ends it.
              assert.match(
                err.details,
                /provider "goaway" (failed Mount for pod default\/goaway-\d: .*GOAWAY|did not answer Mount for pod default\/goaway-\d within 4s)/,
              );
              await within(2_000, "Probe", client.probe());
            });
          }
          await within(
            10_000,
            "the good publish",
            client.nodePublishVolume(node.publishRequest("ok", "spc-good")),
          );
          assert.equal(await Deno.readTextFile(join(node.target("ok"), "file-0")), "secret-0");
          assert.deepEqual(await node.mounts(), [node.target("ok")]);
        } finally {
          await good.stop();
          await stop();
        }
      }),
  );
}
