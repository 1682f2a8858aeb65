/**
 * The driver as a drop-in for upstream v1.6.0: its DaemonSet's and Helm chart's exact args start our
 * `main.ts` (paths and the metrics port moved into a temp dir, the cluster an API-server stand-in reached
 * through $KUBECONFIG) and it publishes a volume from a provider in the directory upstream searches first.
 * Then one /metrics scrape after a publish, errors, a rotation and a Secret sync is checked series by
 * series against what a running upstream v1.6.0 exposes. Needs root (real tmpfs mounts).
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { connectCsi, type CsiClient, kubeletPublishRequest } from "../../lib/csi/client.ts";
import { type ApiServer, startApiServer } from "../support/apiserver.ts";
import { type DriverProcess, startMain } from "../support/processes.ts";
import { requireRoot } from "../support/root.ts";
import { TestProvider } from "../support/test-provider.ts";
import {
  CHART_ALL_OPTIONS_ARGS,
  CHART_DEFAULT_ARGS,
  DEPLOY_ARGS,
  UPSTREAM_ENV,
  UPSTREAM_LE,
  UPSTREAM_PROCESS_SERIES,
  UPSTREAM_SCOPE_LABELS,
  UPSTREAM_SERIES,
} from "../support/upstream.ts";
import { NS, putPod, putSpc, waitFor } from "./k8s_harness.ts";

const NODE = "node-7";

/** A driver started with upstream's args, and what it talks to. */
interface Dropin {
  dir: string;
  server: ApiServer;
  driver: DriverProcess;
  csi: CsiClient;
  /** Serves `test` in the additional-provider dir, which upstream searches first. */
  provider: TestProvider;
  /** Serves `test` in --provider-volume: must not be asked while `provider` is there. */
  decoy: TestProvider;
  metricsUrl: string;
  target(pod: string): string;
  close(): Promise<number>;
}

/**
 * Upstream's args with kubelet's $(VAR) expansion, host paths moved under `dir` and `:8095` moved to a
 * free port (`:0`, same form), nothing else changed.
 */
function localized(args: string[], dir: string): string[] {
  const env: Record<string, string> = {
    CSI_ENDPOINT: UPSTREAM_ENV.CSI_ENDPOINT.replace("/csi/", `${dir}/csi/`),
    KUBE_NODE_NAME: NODE,
  };
  return args.map((arg) =>
    arg.replace(/\$\(([A-Z_]+)\)/g, (_, name) => env[name])
      .replace("/var/run/secrets-store-csi-providers", `${dir}/var/run/secrets-store-csi-providers`)
      .replace(
        "/etc/kubernetes/secrets-store-csi-providers",
        `${dir}/etc/kubernetes/secrets-store-csi-providers`,
      )
      .replace(/^--metrics-addr=:8095$/, "--metrics-addr=:0")
  );
}

async function startDropin(args: string[], overrides: string[] = []): Promise<Dropin> {
  const dir = await Deno.makeTempDir({ prefix: "sscsi-dropin-" });
  const additional = join(dir, "etc/kubernetes/secrets-store-csi-providers");
  const providerVolume = join(dir, "var/run/secrets-store-csi-providers");
  for (const d of [additional, providerVolume, join(dir, "csi")]) await Deno.mkdir(d, { recursive: true });
  const server = await startApiServer();
  const kubeconfig = join(dir, "kubeconfig");
  await Deno.writeTextFile(kubeconfig, server.kubeconfig());
  const provider = await TestProvider.start(additional, "test");
  const decoy = await TestProvider.start(providerVolume, "test");
  decoy.behaviour = { errorCode: "DecoyWasAsked" };
  // Upstream's DaemonSet mounts kubelet's root at /var/lib/kubelet, our default; here it is under `dir`.
  const kubeletRoot = `--kubelet-root-dir=${dir}`;
  const driver = startMain([...localized(args, dir), kubeletRoot, ...overrides], { KUBECONFIG: kubeconfig });
  const cleanUp = async () => {
    await driver.stop();
    await provider.close();
    await decoy.close();
    await server.close();
    await Deno.remove(dir, { recursive: true });
  };
  let port: string | undefined;
  try {
    // Generous: on a loaded machine the first `deno run` and the informer sync take their time.
    const serving = await driver.waitForLine(/serving metrics/, 120_000);
    // ":0" listens on every address (as Go does for ":8095"): reach it on loopback.
    port = /addr[=":]+\[::\]:(\d+)"/.exec(serving)?.[1];
    assert.ok(port, `not listening on every address: ${serving}`);
    await driver.waitForLine(/driver started/, 120_000);
  } catch (err) {
    await cleanUp();
    throw err;
  }
  const csi = connectCsi(`unix://${dir}/csi/csi.sock`);
  return {
    dir,
    server,
    driver,
    csi,
    provider,
    decoy,
    metricsUrl: `http://127.0.0.1:${port}/metrics`,
    target: (pod) => join(dir, "pods", `uid-${pod}`, "volumes/kubernetes.io~csi/secrets/mount"),
    async close() {
      csi.close();
      const status = await driver.stop();
      await cleanUp();
      return status.code;
    },
  };
}

function publishRequest(d: Dropin, pod: { metadata: { name?: string; uid?: string } }, spc: string) {
  const name = pod.metadata.name!;
  return kubeletPublishRequest({
    pod: name,
    targetPath: d.target(name),
    spc,
    podUid: pod.metadata.uid,
    namespace: NS,
  });
}

for (
  const [source, args] of [
    ["deploy/secrets-store-csi-driver.yaml", DEPLOY_ARGS],
    ["the Helm chart with its default values", CHART_DEFAULT_ARGS],
    ["the Helm chart with every option set", CHART_ALL_OPTIONS_ARGS],
  ] as const
) {
  Deno.test(`upstream v1.6.0's args from ${source} start the driver, which publishes a volume`, async () => {
    requireRoot();
    const d = await startDropin([...args]);
    let code: number | undefined;
    try {
      assert.equal((await d.csi.nodeGetInfo()).node_id, NODE);
      d.provider.behaviour = { files: [{ path: "db/password", contents: "from-the-additional-dir" }] };
      putSpc(d.server, "spc");
      const pod = putPod(d.server, "web");
      await d.csi.nodePublishVolume(publishRequest(d, pod, "spc"));
      assert.equal(await Deno.readTextFile(join(d.target("web"), "db/password")), "from-the-additional-dir");
      assert.equal(
        d.decoy.mountRequests.length,
        0,
        "--provider-volume was searched before the additional path",
      );
      await waitFor(
        "the SecretProviderClassPodStatus",
        () => d.server.list("secretproviderclasspodstatuses", {}).length > 0,
      );
      await d.csi.nodeUnpublishVolume({ volume_id: "v", target_path: d.target("web") });
      await assert.rejects(Deno.lstat(d.target("web")), Deno.errors.NotFound);
    } finally {
      code = await d.close();
    }
    assert.equal(code, 0, "the driver did not exit cleanly on SIGTERM");
  });
}

Deno.test("--version with upstream's flag prints upstream's JSON", async () => {
  for (const args of [["--version"], ["-version=true"], ["--endpoint=unix:///x.sock", "--version"]]) {
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", new URL("../../main.ts", import.meta.url).pathname, ...args],
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
    const text = new TextDecoder().decode(out.stdout);
    assert.match(text, /^\{"BuildVersion":"v\d+\.\d+\.\d+","GitCommit":"[^"]*","BuildDate":"[^"]*"\}\n$/);
  }
});

// ---- metrics ----

type Sample = { name: string; labels: Record<string, string>; value: number };

/** Parses the text exposition into samples and the declared type of each family. */
function parseExposition(text: string): { samples: Sample[]; types: Map<string, string> } {
  const samples: Sample[] = [];
  const types = new Map<string, string>();
  for (const line of text.split("\n")) {
    const type = /^# TYPE (\S+) (\S+)$/.exec(line);
    if (type) types.set(type[1], type[2]);
    const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m) continue;
    const labels = Object.fromEntries(
      [...(m[2] ?? "").matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((l) => [l[1], l[2]]),
    );
    samples.push({ name: m[1], labels, value: Number(m[3]) });
  }
  return { samples, types };
}

Deno.test("/metrics after a publish, errors, a rotation and a sync: every upstream series by name, type and labels", async () => {
  requireRoot();
  const d = await startDropin(DEPLOY_ARGS, ["--enable-secret-rotation=true", "--rotation-poll-interval=0s"]);
  try {
    putSpc(d.server, "spc", {
      secretObjects: [{
        secretName: "synced",
        type: "Opaque",
        data: [{ objectName: "password", key: "pw" }],
      }],
    });
    const pod = putPod(d.server, "web");
    d.provider.behaviour = { files: [{ path: "password", contents: "v1" }] };
    await d.csi.nodePublishVolume(publishRequest(d, pod, "spc")); // publish
    await waitFor("the synced Secret", () => d.server.get("Secret", NS, "synced"));
    d.provider.behaviour = { files: [{ path: "password", contents: "v2" }] };
    await d.csi.nodePublishVolume(publishRequest(d, pod, "spc")); // rotation, content changed
    d.provider.queue({ errorCode: "VaultSealed" });
    await d.csi.nodePublishVolume(publishRequest(d, pod, "spc")); // failed rotation (answered OK)
    const other = putPod(d.server, "other");
    await assert.rejects(d.csi.nodePublishVolume(publishRequest(d, other, "missing"))); // SPC not found
    d.provider.queue({ files: [{ path: "../escape", contents: "x" }] });
    await assert.rejects(d.csi.nodePublishVolume(publishRequest(d, other, "spc"))); // invalid file
    const stray = join(d.dir, "stray");
    await Deno.mkdir(stray);
    await Deno.writeTextFile(join(stray, "left-over"), "");
    await assert.rejects(d.csi.nodeUnpublishVolume({ volume_id: "v", target_path: stray })); // unpublish error
    await d.csi.nodeUnpublishVolume({ volume_id: "v", target_path: d.target("web") });

    const res = await fetch(d.metricsUrl);
    assert.equal(
      res.headers.get("content-type"),
      "text/plain; version=0.0.4; charset=utf-8; escaping=underscores",
    );
    let { samples, types } = parseExposition(await res.text());
    // The sync controller counts on its own schedule: scrape until it has.
    for (let i = 0; i < 100 && !samples.some((s) => s.name === "sync_k8s_secret_total"); i++) {
      await new Promise((r) => setTimeout(r, 50));
      ({ samples, types } = parseExposition(await (await fetch(d.metricsUrl)).text()));
    }

    for (const [family, { type, labels }] of Object.entries(UPSTREAM_SERIES)) {
      assert.equal(types.get(family), type, `${family}: type`);
      const names = type === "histogram"
        ? [`${family}_bucket`, `${family}_sum`, `${family}_count`]
        : [family];
      for (const name of names) {
        const found = samples.filter((s) => s.name === name);
        assert.ok(found.length > 0, `no ${name} series`);
        for (const s of found) {
          const want = [...labels, ...UPSTREAM_SCOPE_LABELS, ...(name.endsWith("_bucket") ? ["le"] : [])]
            .sort();
          assert.deepEqual(Object.keys(s.labels).sort(), want, `${name} labels`);
          assert.equal(s.labels.os_type, "linux");
          assert.equal(s.labels.otel_scope_name, "sigs.k8s.io/secrets-store-csi-driver");
          assert.equal(s.labels.otel_scope_version, "");
        }
      }
      if (type === "histogram") {
        const le = samples.filter((s) => s.name === `${family}_bucket`).map((s) => s.labels.le);
        assert.deepEqual(le, UPSTREAM_LE, `${family} buckets`);
      }
    }
    const value = (name: string, labels: Record<string, string>) =>
      samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))
        .reduce((sum, s) => sum + s.value, 0);
    assert.equal(value("node_publish_total", { provider: "test" }), 2, "the publish and the rotation");
    assert.equal(value("node_publish_error_total", { error_type: "SecretProviderClassNotFound" }), 1);
    assert.equal(value("node_publish_error_total", { error_type: "FileWriteError", provider: "test" }), 1);
    assert.equal(value("node_publish_error_total", { error_type: "VaultSealed", provider: "test" }), 1);
    assert.equal(value("rotation_reconcile_total", { provider: "test", rotated: "true" }), 1);
    assert.equal(value("rotation_reconcile_error_total", { error_type: "VaultSealed", rotated: "true" }), 1);
    assert.equal(value("rotation_reconcile_duration_sec_count", {}), 1);
    assert.equal(value("node_unpublish_total", {}), 1);
    assert.equal(value("node_unpublish_error_total", {}), 1);
    assert.ok(value("sync_k8s_secret_total", { provider: "test" }) >= 1);
    assert.ok(value("k8s_secret_duration_sec_count", {}) >= 1);
    const target = samples.find((s) => s.name === "target_info");
    assert.deepEqual(Object.keys(target?.labels ?? {}).sort(), [
      "service_name",
      "telemetry_sdk_language",
      "telemetry_sdk_name",
      "telemetry_sdk_version",
    ]);
    for (const [name, type] of Object.entries(UPSTREAM_PROCESS_SERIES)) {
      assert.equal(types.get(name), type, name);
      assert.ok(value(name, {}) > 0, `${name} is 0`);
    }
    assert.equal(value("secrets_store_csi_mounted_volumes", {}), 0);
    assert.ok(
      samples.every((s) => !Object.values(s.labels).some((v) => v.includes(d.dir))),
      "a label holds a path",
    );
  } finally {
    await d.close();
  }
});
