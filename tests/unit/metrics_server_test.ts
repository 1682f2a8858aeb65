import assert from "node:assert/strict";
import { DriverError } from "../../lib/errors.ts";
import { silentLogger } from "../../lib/log.ts";
import {
  FOLDED_ERROR_TYPE,
  MAX_ERROR_TYPE_LENGTH,
  MAX_PROVIDER_ERROR_TYPES,
  PrometheusMetrics,
  UPSTREAM_ERROR_TYPES,
} from "../../lib/metrics.ts";
import { UPSTREAM_LE, UPSTREAM_PROCESS_SERIES } from "../support/upstream.ts";
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

Deno.test("/metrics answers with upstream's content type; /healthz follows the health callback", async () => {
  const metrics = new PrometheusMetrics();
  metrics.nodePublish("vault", 0.01);
  let healthy = true;
  const server = startMetricsServer(
    "127.0.0.1:0",
    metrics.registry,
    () => Promise.resolve(healthy),
    silentLogger,
  );
  try {
    const base = `http://127.0.0.1:${server.port}`;
    const res = await fetch(`${base}/metrics`);
    assert.equal(
      res.headers.get("content-type"),
      "text/plain; version=0.0.4; charset=utf-8; escaping=underscores",
    );
    assert.match(await res.text(), /^node_publish_total\{os_type="linux",.*provider="vault"\} 1$/m);
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

const SCOPE =
  'otel_scope_name="sigs.k8s.io/secrets-store-csi-driver",otel_scope_schema_url="",otel_scope_version=""';

Deno.test("upstream's series, exactly as upstream v1.6.0's exporter writes them", async () => {
  const metrics = new PrometheusMetrics();
  metrics.nodePublish("vault", 0.01);
  metrics.nodePublishError("", "SecretProviderClassNotFound");
  metrics.nodeUnpublish();
  metrics.nodeUnpublishError();
  metrics.syncK8sSecret("vault", 2, 0.3);
  metrics.rotation("vault", false, 0.2);
  metrics.rotationError("vault", "FileWriteError");
  const text = (await metrics.registry.metrics()).split("\n");
  for (
    const line of [
      "# TYPE node_publish_total counter",
      `node_publish_total{os_type="linux",${SCOPE},provider="vault"} 1`,
      `node_publish_error_total{error_type="SecretProviderClassNotFound",os_type="linux",${SCOPE},provider=""} 1`,
      `node_unpublish_total{os_type="linux",${SCOPE}} 1`,
      `node_unpublish_error_total{os_type="linux",${SCOPE}} 1`,
      `sync_k8s_secret_total{os_type="linux",${SCOPE},provider="vault"} 2`,
      "# TYPE k8s_secret_duration_sec histogram",
      `k8s_secret_duration_sec_count{os_type="linux",${SCOPE}} 1`,
      // upstream's rotated is "true" on every rotation that ran, changed or not, failed or not
      `rotation_reconcile_total{os_type="linux",${SCOPE},provider="vault",rotated="true"} 1`,
      `rotation_reconcile_error_total{error_type="FileWriteError",os_type="linux",${SCOPE},provider="vault",rotated="true"} 1`,
      // a failed rotation is a failed publish too; its duration is not observed
      `node_publish_error_total{error_type="FileWriteError",os_type="linux",${SCOPE},provider="vault"} 1`,
      `rotation_reconcile_duration_sec_count{os_type="linux",${SCOPE}} 1`,
      `rotation_reconcile_duration_sec_bucket{le="1.9999999999999991",os_type="linux",${SCOPE}} 1`,
      'target_info{service_name="unknown_service:secrets-store-csi",telemetry_sdk_language="typescript",telemetry_sdk_name="secrets-store-csi",telemetry_sdk_version="v0.1.0"} 1',
      'secrets_store_csi_rotation_unchanged_total{os_type="linux",provider="vault"} 1',
    ]
  ) assert.ok(text.includes(line), `missing: ${line}`);
  // Go's ExponentialBucketsRange(0.1, 2, 11), to the last digit.
  const bounds = text.filter((l) => l.startsWith("k8s_secret_duration_sec_bucket"))
    .map((l) => /le="([^"]+)"/.exec(l)![1]);
  assert.deepEqual(bounds, UPSTREAM_LE);
});

Deno.test("our own series carry their own prefix; process metrics have the Go collector's names", async () => {
  const metrics = new PrometheusMetrics();
  metrics.syncK8sSecretError("vault", "InvalidSecretObject");
  metrics.providerHealth("vault", false);
  metrics.mountedVolumes(3);
  metrics.nodePublish("vault", 0.004);
  const text = await metrics.registry.metrics();
  for (
    const line of [
      'secrets_store_csi_sync_k8s_secret_error_total{error_type="InvalidSecretObject",os_type="linux",provider="vault"} 1',
      'secrets_store_csi_provider_healthy{os_type="linux",provider="vault"} 0',
      'secrets_store_csi_mounted_volumes{os_type="linux"} 3',
      'secrets_store_csi_node_publish_duration_seconds_bucket{le="0.005",os_type="linux",provider="vault"} 1',
    ]
  ) assert.ok(text.split("\n").includes(line), `missing: ${line}`);
  for (const [name, type] of Object.entries(UPSTREAM_PROCESS_SERIES)) {
    const m = new RegExp(`^# TYPE ${name} ${type}\n(?:# .*\n)*${name} (\\S+)$`, "m").exec(text);
    assert.ok(m, `missing ${type} ${name}`);
    assert.ok(Number(m[1]) > 0, `${name} is ${m[1]}`);
  }
  const rss = Number(/^process_resident_memory_bytes (\S+)$/m.exec(text)![1]);
  assert.ok(Math.abs(rss - Deno.memoryUsage().rss) < 64 * 1024 * 1024, `rss ${rss}`);
  const start = Number(/^process_start_time_seconds (\S+)$/m.exec(text)![1]);
  // /proc's boot time is whole seconds and drifts from the wall clock on VMs, as for Go's collector.
  const now = Date.now() / 1000;
  assert.ok(start <= now + 1 && start > now - 3600, `start ${start}, now ${now}`);
  const series = text.split("\n").filter((l) => /^[a-z]/.test(l)).map((l) => l.split(/[{ ]/)[0]);
  // Every series is upstream's name or carries our prefix: nothing else can collide with upstream's.
  const ALLOWED =
    /^(node_|sync_k8s_secret_total|k8s_secret_duration_sec|rotation_reconcile|target_info|process_|secrets_store_csi_)/;
  for (const name of series) assert.match(name, ALLOWED);
});

Deno.test("error_type: upstream's values pass, provider codes are bounded in length and number", async () => {
  const metrics = new PrometheusMetrics();
  metrics.nodePublishError("vault", "x".repeat(200_000));
  metrics.nodePublishError("vault", "bad code\nwith newline");
  for (let i = 0; i < 300; i++) metrics.nodePublishError("vault", `Code${i}`);
  for (const reason of UPSTREAM_ERROR_TYPES) metrics.nodePublishError("vault", reason);
  const text = await metrics.registry.metrics();
  assert.ok(text.length < 64 * 1024, `/metrics is ${text.length} bytes`);
  const values = new Set(
    [...text.matchAll(/^node_publish_error_total\{error_type="([^"]*)"/gm)].map((m) => m[1]),
  );
  assert.equal(values.size, MAX_PROVIDER_ERROR_TYPES + UPSTREAM_ERROR_TYPES.length);
  for (const reason of UPSTREAM_ERROR_TYPES) assert.ok(values.has(reason), reason);
  assert.ok(values.has("Code0") && values.has(`Code${MAX_PROVIDER_ERROR_TYPES - 1}`));
  assert.ok(!values.has(`Code${MAX_PROVIDER_ERROR_TYPES}`));
  const folded = new RegExp(`^node_publish_error_total\\{error_type="${FOLDED_ERROR_TYPE}".* (\\d+)$`, "m");
  // 200 KB code + newline code + 268 codes past the bound, plus upstream's own ProviderError once
  assert.equal(Number(folded.exec(text)![1]), 2 + (300 - MAX_PROVIDER_ERROR_TYPES) + 1);
  for (const v of values) assert.ok(v.length <= MAX_ERROR_TYPE_LENGTH, v);
});
