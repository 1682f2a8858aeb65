/**
 * Providers that break the gRPC conversation: an answer over the receive limit, a socket that speaks
 * garbage, one that accepts and never answers, one that hangs up mid-request. Each publish fails with a
 * clear error naming the provider and the pod, leaves no mount, and the driver serves on. Every failure
 * is final (UNKNOWN): the driver has unmounted, nothing is in progress (lib/csi/codes.ts). Needs root.
 */
import assert from "node:assert/strict";
import { status } from "@grpc/grpc-js";
import { join } from "node:path";
import { type GrpcFailure, grpcFailure, type TestDriver, withTestDriver } from "../support/driver.ts";

function publishFailure(d: TestDriver, pod: string, spc: string): Promise<GrpcFailure> {
  return grpcFailure(d.client.nodePublishVolume(d.publishRequest(pod, spc)));
}

async function assertNothingLeft(d: TestDriver, pod: string): Promise<void> {
  assert.deepEqual(await d.mounts(), [], "a mount was left behind");
  for await (const entry of Deno.readDir(d.target(pod))) assert.fail(`${entry.name} left in the target`);
}

/** The driver still publishes through the good provider. */
async function assertServing(d: TestDriver, pod: string): Promise<void> {
  await d.client.nodePublishVolume(d.publishRequest(pod));
  assert.equal(await Deno.readTextFile(join(d.target(pod), "secret")), "s3cr3t");
  await d.client.nodeUnpublishVolume({ volume_id: "v", target_path: d.target(pod) });
  assert.deepEqual(await d.mounts(), []);
}

/** What a raw "provider" does with each accepted connection. */
type RawBehaviour = (conn: Deno.Conn) => Promise<void>;

/** A unix socket server that is not a gRPC provider at all. */
async function withRawProvider(
  d: TestDriver,
  name: string,
  behaviour: RawBehaviour,
  fn: () => Promise<void>,
): Promise<void> {
  const listener = Deno.listen({ transport: "unix", path: join(d.providerDir, `${name}.sock`) });
  const conns = new Set<Deno.Conn>();
  const handlers: Promise<void>[] = [];
  const accepting = (async () => {
    for await (const conn of listener) {
      conns.add(conn);
      handlers.push(behaviour(conn).catch(() => {}));
    }
  })();
  try {
    await d.addSpc(`spc-${name}`, name);
    await fn();
  } finally {
    listener.close();
    await accepting;
    for (const conn of conns) {
      try {
        conn.close();
      } catch { /* closed by the behaviour */ }
    }
    await Promise.all(handlers);
  }
}

/** Reads until the peer closes or the connection is closed under it. */
async function drain(conn: Deno.Conn): Promise<void> {
  const buffer = new Uint8Array(64 * 1024);
  try {
    while (await conn.read(buffer) !== null) { /* discard */ }
  } catch { /* closed */ }
}

const garbage: RawBehaviour = async (conn) => {
  const junk = new Uint8Array(4096).map((_, i) => (i * 131 + 7) % 256);
  await conn.write(new TextEncoder().encode("HTTP/1.1 200 OK\r\n\r\n"));
  await conn.write(junk).catch(() => {});
  await drain(conn);
};

const silent: RawBehaviour = (conn) => drain(conn);

const hangUpMidRequest: RawBehaviour = async (conn) => {
  await conn.read(new Uint8Array(30)); // part of the client preface
  conn.close();
};

Deno.test("a provider answer over --max-call-recv-msg-size is a final error naming the flag", () =>
  withTestDriver(async (d) => {
    d.provider.behaviour = { files: [{ path: "big", contents: new Uint8Array(100 * 1024) }] };
    const err = await publishFailure(d, "big", "spc-test");
    assert.equal(err.code, status.UNKNOWN, err.details);
    assert.match(err.details, /provider "test" answered Mount for pod default\/big with a \d+-byte message/);
    assert.match(err.details, /over the 65536-byte limit; raise --max-call-recv-msg-size/);
    await assertNothingLeft(d, "big");
    d.provider.behaviour = { files: [{ path: "secret", contents: "s3cr3t" }] };
    await assertServing(d, "after-big");
  }, { provider: { maxRecvBytes: 64 * 1024 } }));

Deno.test("a socket that answers with garbage bytes is a clean final error", () =>
  withTestDriver((d) =>
    withRawProvider(d, "garbage", garbage, async () => {
      const err = await publishFailure(d, "garbage", "spc-garbage");
      assert.equal(err.code, status.UNKNOWN, err.details);
      assert.match(err.details, /provider "garbage" failed Mount for pod default\/garbage: /);
      await assertNothingLeft(d, "garbage");
      await assertServing(d, "after-garbage");
    }), { provider: { timeoutMs: 3000 } }));

Deno.test("a socket that accepts and never answers fails at the deadline, naming the time", () =>
  withTestDriver((d) =>
    withRawProvider(d, "silent", silent, async () => {
      const err = await publishFailure(d, "silent", "spc-silent");
      assert.equal(err.code, status.UNKNOWN, err.details);
      assert.match(
        err.details,
        /provider "silent" did not answer Mount for pod default\/silent within 1\.5s/,
      );
      await assertNothingLeft(d, "silent");
      await assertServing(d, "after-silent");
    }), { provider: { timeoutMs: 1500 } }));

Deno.test("a socket that hangs up in the middle of the request is a clean final error", () =>
  withTestDriver((d) =>
    withRawProvider(d, "hangup", hangUpMidRequest, async () => {
      const err = await publishFailure(d, "hangup", "spc-hangup");
      assert.equal(err.code, status.UNKNOWN, err.details);
      assert.match(err.details, /provider "hangup" failed Mount for pod default\/hangup: /);
      await assertNothingLeft(d, "hangup");
      await assertServing(d, "after-hangup");
    }), { provider: { timeoutMs: 3000 } }));

/** The codes kubelet reads as "maybe still in progress", as a provider's own answer. */
const UNCERTAIN = ["UNAVAILABLE", "DEADLINE_EXCEEDED", "RESOURCE_EXHAUSTED", "ABORTED", "CANCELLED"] as const;

Deno.test("a provider's own uncertain codes reach kubelet as a final UNKNOWN naming the provider's code", () =>
  withTestDriver(async (d) => {
    for (const name of UNCERTAIN) {
      const pod = `code-${name.toLowerCase()}`;
      const grpcError = { code: status[name], message: `the vault said ${name}` };
      // UNAVAILABLE is retried (3 attempts in all, like upstream): make every attempt fail.
      d.provider.queue(...Array.from({ length: name === "UNAVAILABLE" ? 3 : 1 }, () => ({ grpcError })));
      const started = performance.now();
      const err = await publishFailure(d, pod, "spc-test");
      assert.equal(err.code, status.UNKNOWN, `${name}: ${err.details}`);
      assert.equal(
        err.details,
        `provider "test" failed Mount for pod default/${pod}: the vault said ${name} (${name})`,
      );
      if (name !== "UNAVAILABLE") {
        assert.ok(performance.now() - started < 2000, "the provider answered at once");
      }
      await assertNothingLeft(d, pod);
    }
    await assertServing(d, "after-codes");
  }, { provider: { timeoutMs: 5000 } }));
