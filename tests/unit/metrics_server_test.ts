import assert from "node:assert/strict";
import { DriverError } from "../../lib/errors.ts";
import { silentLogger } from "../../lib/log.ts";
import { PrometheusMetrics } from "../../lib/metrics.ts";
import { parseListenAddress, startMetricsServer } from "../../lib/metrics-server.ts";

Deno.test("listen addresses in Go's forms", () => {
  assert.deepEqual(parseListenAddress(":8095"), { hostname: "0.0.0.0", port: 8095 });
  assert.deepEqual(parseListenAddress("127.0.0.1:0"), { hostname: "127.0.0.1", port: 0 });
  assert.deepEqual(parseListenAddress("[::1]:9000"), { hostname: "::1", port: 9000 });
  for (const bad of ["8095", ":", "host:99999", "a:b"]) {
    assert.throws(() => parseListenAddress(bad), (e: DriverError) => /--metrics-addr/.test(e.message));
  }
});

Deno.test("a metrics address already in use is a clear start-up error", async () => {
  const metrics = new PrometheusMetrics();
  const first = startMetricsServer(
    "127.0.0.1:0",
    metrics.registry,
    () => Promise.resolve(true),
    silentLogger,
  );
  try {
    assert.throws(
      () =>
        startMetricsServer(
          `127.0.0.1:${first.port}`,
          metrics.registry,
          () => Promise.resolve(true),
          silentLogger,
        ),
      /cannot listen on --metrics-addr 127\.0\.0\.1:\d+/,
    );
  } finally {
    await first.close();
  }
});

Deno.test("/metrics serves upstream's metric names; /healthz follows the health callback", async () => {
  const metrics = new PrometheusMetrics();
  metrics.nodePublish("vault", 0.01);
  metrics.nodePublishError("vault", "GRPCProviderError");
  let healthy = true;
  const server = startMetricsServer(
    "127.0.0.1:0",
    metrics.registry,
    () => Promise.resolve(healthy),
    silentLogger,
  );
  try {
    const base = `http://127.0.0.1:${server.port}`;
    const text = await (await fetch(`${base}/metrics`)).text();
    assert.match(text, /^total_node_publish\{provider="vault",os_type="linux"\} 1$/m);
    assert.match(
      text,
      /^total_node_publish_error\{provider="vault",error_type="GRPCProviderError",os_type="linux"\} 1$/m,
    );
    for (
      const name of [
        "total_node_unpublish",
        "total_node_unpublish_error",
        "total_sync_k8s_secret",
        "sync_k8s_secret_duration_sec",
        "total_rotation_reconcile",
        "total_rotation_reconcile_error",
        "rotation_reconcile_duration_sec",
      ]
    ) assert.match(text, new RegExp(`^# TYPE ${name} `, "m"));
    const ok = await fetch(`${base}/healthz`);
    assert.equal(ok.status, 200);
    await ok.body?.cancel();
    healthy = false;
    const down = await fetch(`${base}/healthz`);
    assert.equal(down.status, 503);
    await down.body?.cancel();
    const missing = await fetch(`${base}/nope`);
    assert.equal(missing.status, 404);
    await missing.body?.cancel();
  } finally {
    await server.close();
  }
});

Deno.test("sync and rotation metrics carry upstream's labels", async () => {
  const metrics = new PrometheusMetrics();
  metrics.syncK8sSecret("vault", 2, 0.3);
  metrics.syncK8sSecretError("vault", "InvalidSecretObject");
  metrics.rotation("vault", true, 0.2);
  metrics.rotationError("vault", "FailedToRotate", false, 0.1);
  metrics.providerHealth("vault", false);
  const text = await metrics.registry.metrics();
  for (
    const line of [
      'total_sync_k8s_secret{provider="vault",os_type="linux"} 2',
      'sync_k8s_secret_duration_sec_count{os_type="linux"} 1',
      'total_sync_k8s_secret_error{provider="vault",error_type="InvalidSecretObject",os_type="linux"} 1',
      'total_rotation_reconcile{provider="vault",os_type="linux",rotated="true"} 1',
      'total_rotation_reconcile_error{provider="vault",error_type="FailedToRotate",os_type="linux",rotated="false"} 1',
      'rotation_reconcile_duration_sec_count{os_type="linux"} 2',
      'provider_healthy{provider="vault",os_type="linux"} 0',
    ]
  ) assert.ok(text.split("\n").includes(line), `missing: ${line}`);
});
