/**
 * A CSI connection that never sends the HTTP/2 preface is closed after PREFACE_TIMEOUT_MS (120 s, as
 * grpc-go); one that sent it stays open. The timeout is shortened through the server's internal option.
 * Before, such connections stayed open forever. No root needed.
 */
import assert from "node:assert/strict";
import { PREFACE_TIMEOUT_MS, startCsiServer } from "../../lib/csi/server.ts";
import { silentLogger } from "../../lib/log.ts";

const PREFACE = new TextEncoder().encode("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
const EMPTY_SETTINGS = new Uint8Array([0, 0, 0, 4, 0, 0, 0, 0, 0]);

/** Reads until the server closes the connection; resolves with the time that took. */
async function closedAfter(conn: Deno.Conn): Promise<number> {
  const started = performance.now();
  const buffer = new Uint8Array(4096);
  try {
    while (await conn.read(buffer) !== null) { /* the server's SETTINGS, ... */ }
  } catch { /* reset by the server */ }
  return performance.now() - started;
}

Deno.test("the preface timeout is grpc-go's 120 s", () => {
  assert.equal(PREFACE_TIMEOUT_MS, 120_000);
});

Deno.test("a connection without an HTTP/2 preface is closed after the preface timeout; others stay", async () => {
  const dir = await Deno.makeTempDir({ prefix: "csi-preface-" });
  const server = await startCsiServer({
    endpoint: `unix://${dir}/csi.sock`,
    driverName: "secrets-store.csi.k8s.io",
    version: "test",
    nodeId: "node-a",
    volumes: { publish: () => Promise.resolve(), unpublish: () => Promise.resolve() },
    log: silentLogger,
    prefaceTimeoutMs: 300,
  });
  const silent = await Deno.connect({ transport: "unix", path: server.socketPath });
  const speaking = await Deno.connect({ transport: "unix", path: server.socketPath });
  try {
    await speaking.write(PREFACE);
    await speaking.write(EMPTY_SETTINGS);
    const silentClosed = closedAfter(silent);
    let speakingClosed = false;
    const speakingDone = closedAfter(speaking).then(() => speakingClosed = true);
    let timer: ReturnType<typeof setTimeout> | undefined;
    const ms = await Promise.race([
      silentClosed,
      new Promise<number>((resolve) => timer = setTimeout(() => resolve(Infinity), 3000)),
    ]);
    clearTimeout(timer);
    assert.ok(ms >= 250 && ms < 3000, `closed after ${Math.round(ms)} ms`);
    await new Promise((resolve) => setTimeout(resolve, 600));
    assert.equal(speakingClosed, false, "a connection that sent its preface was closed");
    speaking.close();
    await speakingDone;
  } finally {
    try {
      silent.close();
    } catch { /* closed by the server */ }
    await server.shutdown(500);
    await Deno.remove(dir, { recursive: true });
  }
});
