/**
 * What operators see of a running driver process: Prometheus metrics with upstream's names and labels,
 * /healthz, JSON logs without secret bytes, and provider health. Needs root (it publishes volumes).
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { connectCsi } from "../../lib/csi/client.ts";
import { requireRoot } from "../support/root.ts";
import { startMain } from "../support/processes.ts";

const SECRETS = { "db/password": "pw-7f3a9c1e-never-log-me", "token": "tok-51b2d8e4-never-log-me" };

/** Parses Prometheus text: `name{a="b",...} value` lines into {name, labels, value}. */
function parseMetrics(text: string) {
  const samples: { name: string; labels: Record<string, string>; value: number }[] = [];
  for (const line of text.split("\n")) {
    const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m) continue;
    const labels = Object.fromEntries(
      [...(m[2] ?? "").matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((l) => [l[1], l[2]]),
    );
    samples.push({ name: m[1], labels, value: Number(m[3]) });
  }
  return samples;
}

function sample(samples: ReturnType<typeof parseMetrics>, name: string, labels: Record<string, string>) {
  return samples.find((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
}

Deno.test("metrics, healthz, JSON logs and provider health of a running driver", async () => {
  requireRoot();
  const dir = await Deno.makeTempDir({ prefix: "sscsi-obs-" });
  const providers = join(dir, "providers");
  const root = join(dir, "store");
  const spcDir = join(dir, "spc");
  await Deno.mkdir(join(root, "db"), { recursive: true });
  await Deno.mkdir(spcDir);
  for (const [path, value] of Object.entries(SECRETS)) await Deno.writeTextFile(join(root, path), value);
  await Deno.writeTextFile(
    join(spcDir, "spc.yaml"),
    `apiVersion: secrets-store.csi.x-k8s.io/v1\nkind: SecretProviderClass\nmetadata: {name: obs, namespace: default}\n` +
      `spec:\n  provider: local\n  parameters:\n    objects: |\n      - objectName: db/password\n      - objectName: token\n`,
  );
  const endpoint = `unix://${join(dir, "csi.sock")}`;
  const startProvider = () =>
    startMain([
      "provider",
      "local",
      "--provider-volume",
      providers,
      "--root",
      root,
      "--log-format-json",
      "-v=5",
    ]);
  let provider = startProvider();
  const driver = startMain([
    "node",
    `--endpoint=${endpoint}`,
    "--nodeid=obs-node",
    `--provider-volume=${providers}`,
    "--additional-provider-volume-paths=",
    `--spc-dir=${spcDir}`,
    "--metrics-addr=127.0.0.1:0",
    `--kubelet-root-dir=${dir}`,
    "--enable-secret-rotation=true",
    "--rotation-poll-interval=0s",
    "--provider-health-check",
    "--provider-health-check-interval=100ms",
    "--log-format-json",
    "-v=5",
  ]);
  const csi = connectCsi(endpoint);
  const target = join(dir, "pods/uid-1/volumes/kubernetes.io~csi/vol/mount");
  const request = {
    volume_id: "v",
    target_path: target,
    volume_capability: { mount: {} },
    readonly: true,
    volume_context: {
      secretProviderClass: "obs",
      "csi.storage.k8s.io/pod.name": "web",
      "csi.storage.k8s.io/pod.namespace": "default",
    },
  };
  try {
    const metricsLine = await driver.waitForLine(/"serving metrics"/);
    const base = `http://${JSON.parse(metricsLine).addr}`;
    await provider.waitForLine(/listening/);
    await driver.waitForLine(/"driver started"/);
    const scrape = async () => parseMetrics(await (await fetch(`${base}/metrics`)).text());

    assert.equal((await fetch(`${base}/healthz`)).status, 200);
    await (await fetch(`${base}/healthz`)).body?.cancel();

    await csi.nodePublishVolume(request); // publish
    await csi.nodePublishVolume(request); // republish: rotation (interval 0) with unchanged content
    await Deno.writeTextFile(join(root, "token"), "tok-rotated-never-log-me");
    await csi.nodePublishVolume(request); // rotation with changed content
    await assert.rejects(
      csi.nodePublishVolume({
        ...request,
        target_path: join(dir, "pods/uid-2/volumes/kubernetes.io~csi/vol/mount"),
        volume_context: { ...request.volume_context, secretProviderClass: "missing" },
      }),
    );
    await csi.nodeUnpublishVolume({ volume_id: "v", target_path: target });

    const m = await scrape();
    const linux = { os_type: "linux" };
    assert.equal(sample(m, "node_publish_total", { ...linux, provider: "local" })?.value, 3);
    assert.equal(
      sample(m, "node_publish_error_total", {
        ...linux,
        provider: "",
        error_type: "SecretProviderClassNotFound",
      })?.value,
      1,
    );
    assert.equal(sample(m, "node_unpublish_total", linux)?.value, 1);
    // Upstream's rotated label is "true" on every rotation that ran; unchanged content is our own series.
    assert.equal(
      sample(m, "rotation_reconcile_total", { ...linux, provider: "local", rotated: "true" })?.value,
      2,
    );
    assert.equal(
      sample(m, "secrets_store_csi_rotation_unchanged_total", { ...linux, provider: "local" })?.value,
      1,
    );
    assert.equal(sample(m, "rotation_reconcile_duration_sec_count", linux)?.value, 2);
    assert.equal(
      sample(m, "secrets_store_csi_node_publish_duration_seconds_count", { ...linux, provider: "local" })
        ?.value,
      3,
    );
    assert.equal(sample(m, "secrets_store_csi_mounted_volumes", linux)?.value, 0);
    assert.ok(
      m.every((s) => !Object.values(s.labels).some((v) => v.includes(dir))),
      "a label exposes a path",
    );

    // Provider health: killed → unhealthy, restarted → healthy again.
    const healthOf = async () =>
      sample(await scrape(), "secrets_store_csi_provider_healthy", { ...linux, provider: "local" })?.value;
    const waitForHealth = async (want: number) => {
      for (let i = 0; i < 100 && await healthOf() !== want; i++) await new Promise((r) => setTimeout(r, 50));
      assert.equal(await healthOf(), want);
    };
    await waitForHealth(1);
    await provider.stop("SIGKILL");
    await waitForHealth(0);
    provider = startProvider();
    await waitForHealth(1);
  } finally {
    csi.close();
    const status = await driver.stop();
    await provider.stop();
    assert.equal(status.code, 0, "driver did not exit cleanly on SIGTERM");
    await Deno.remove(dir, { recursive: true });
  }

  // Every log line is one JSON object in upstream's (mlog's) schema, and no line carries secret bytes.
  for (const line of [...driver.lines, ...provider.lines]) {
    let entry;
    try {
      entry = JSON.parse(line);
    } catch {
      assert.fail(`a log line is not JSON: ${line}`);
    }
    assert.deepEqual(Object.keys(entry).slice(0, 4), ["level", "timestamp", "caller", "message"], line);
    for (const secret of [...Object.values(SECRETS), "tok-rotated-never-log-me"]) {
      assert.ok(!line.includes(secret), `a log line carries secret bytes: ${line}`);
    }
  }
  assert.ok(driver.lines.some((l) => JSON.parse(l).message === "node publish volume complete"));
});
