/** --enable-pprof's server: a V8 heap snapshot and a CPU profile over HTTP, on loopback only. */
import assert from "node:assert/strict";
import { networkInterfaces } from "node:os";
import { silentLogger } from "../../lib/log.ts";
import { startProfilingServer } from "../../lib/profiling-server.ts";

Deno.test("the heap snapshot is a V8 .heapsnapshot and the CPU profile a .cpuprofile", async () => {
  const server = startProfilingServer(0, silentLogger);
  try {
    const base = `http://127.0.0.1:${server.port}/debug/pprof`;
    const index = await (await fetch(`${base}/`)).text();
    assert.match(index, /\/debug\/pprof\/heap/);
    assert.match(index, /holds secret contents/);

    const heap = await fetch(`${base}/heap`);
    assert.equal(heap.status, 200);
    assert.match(
      heap.headers.get("content-disposition")!,
      /attachment; filename="secrets-store-csi-.*\.heapsnapshot"/,
    );
    const snapshot = JSON.parse(await heap.text());
    assert.ok(snapshot.snapshot.meta.node_fields.includes("self_size"));
    assert.ok(snapshot.nodes.length > 1000);

    const started = performance.now();
    const profile = await fetch(`${base}/profile?seconds=0.3`);
    assert.equal(profile.status, 200);
    const cpu = JSON.parse(await profile.text());
    assert.ok(performance.now() - started >= 290, "the profile covers the seconds asked for");
    assert.ok(Array.isArray(cpu.nodes) && cpu.nodes.length > 0 && cpu.endTime > cpu.startTime);

    for (const bad of ["0", "-1", "301", "soon"]) {
      const res = await fetch(`${base}/profile?seconds=${bad}`);
      assert.equal(res.status, 400, bad);
      await res.body?.cancel();
    }
    const missing = await fetch(`${base}/goroutine`);
    assert.equal(missing.status, 404);
    await missing.body?.cancel();
  } finally {
    await server.close();
  }
});

Deno.test("one CPU profile at a time", async () => {
  const server = startProfilingServer(0, silentLogger);
  try {
    const base = `http://127.0.0.1:${server.port}/debug/pprof`;
    const first = fetch(`${base}/profile?seconds=0.5`);
    await new Promise((r) => setTimeout(r, 100));
    const second = await fetch(`${base}/profile?seconds=0.1`);
    assert.equal(second.status, 409);
    await second.body?.cancel();
    assert.equal((await first).status, 200);
    await (await first).body?.cancel();
  } finally {
    await server.close();
  }
});

Deno.test("the profiling server listens on 127.0.0.1 only, never on the node's addresses", async () => {
  const server = startProfilingServer(0, silentLogger);
  try {
    const external = Object.values(networkInterfaces()).flat()
      .filter((a) => a && a.family === "IPv4" && !a.internal).map((a) => a!.address);
    assert.ok(external.length > 0, "this machine has no non-loopback IPv4 address to try");
    for (const address of external) {
      await assert.rejects(
        Deno.connect({ hostname: address, port: server.port }),
        Deno.errors.ConnectionRefused,
        address,
      );
    }
    (await Deno.connect({ hostname: "127.0.0.1", port: server.port })).close();
  } finally {
    await server.close();
  }
});
