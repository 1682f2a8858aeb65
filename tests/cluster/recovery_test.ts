/**
 * The driver's informers across a real API server restart and a real etcd compaction, in a cluster of
 * this test's own (the restart would disturb every other test on the shared one). The driver reaches
 * the API server through a TCP proxy the test can cut, so changes happen while its watches are down.
 */
import assert from "node:assert/strict";
import { parse, stringify } from "yaml";
import { compactEtcd, restartComponent } from "../../tools/cluster/control-plane.ts";
import {
  createPod,
  createSpc,
  driverRequests,
  eventually,
  privateCluster,
  restPath,
  secretData,
  testNamespace,
} from "../support/cluster.ts";
import { requireRoot } from "../support/root.ts";
import { TcpProxy } from "../support/tcp-proxy.ts";
import { startClusterDriver } from "./harness.ts";

requireRoot();
const SPC_GROUP = "secrets-store.csi.x-k8s.io";

Deno.test("informers survive an API server restart and an etcd compaction (410 Gone) without losing a change", async () => {
  await using c = await privateCluster();
  const { admin } = c;
  await using ns = await testNamespace(admin);
  const oneKey = (
    key: string,
  ) => [{ secretName: "app", type: "Opaque", data: [{ objectName: "secret", key }] }];
  await createSpc(admin, ns.name, "app", { secretObjects: oneKey("v1") });
  const pod = await createPod(admin, ns.name, "app");

  // The driver's kubeconfig, pointed at the proxy (the serving certificate is for 127.0.0.1 either way).
  await using proxy = TcpProxy.start(Number(new URL(c.cluster.server).port));
  const kubeconfig = parse(await Deno.readTextFile(c.driverKubeconfig)) as {
    clusters: { cluster: { server: string } }[];
  };
  kubeconfig.clusters[0].cluster.server = `https://127.0.0.1:${proxy.port}`;
  const proxied = `${c.cluster.dir}/driver-via-proxy.kubeconfig`;
  await Deno.writeTextFile(proxied, stringify(kubeconfig));

  // The production watch timeout (5 min): how long the driver takes to notice its dead streams is the point.
  const k = await startClusterDriver({ ...c, driverKubeconfig: proxied }, {
    tuning: { informerBackoffMs: { initial: 100, max: 1_000 }, watchTimeoutSeconds: 300 },
  });
  try {
    k.driver.provider.behaviour = { files: [{ path: "secret", contents: "s3cr3t" }] };
    await k.driver.client.nodePublishVolume(k.publishRequest(pod, "app"));
    await eventually("the secret", async () => (await secretData(admin, ns.name, "app"))?.v1 === "s3cr3t");

    // Behind the driver's back: the class changes, the API server restarts (its watch cache starts
    // afresh) and etcd forgets the history the driver's watches would resume from.
    proxy.block();
    const path = restPath(`${SPC_GROUP}/v1`, "secretproviderclasses", ns.name, "app");
    const spc = await admin.get(path);
    await admin.put(path, { ...spc, spec: { ...(spc.spec as object), secretObjects: oneKey("v2") } });
    await restartComponent(c.cluster.dir, "kube-apiserver");
    const compacted = await compactEtcd(c.cluster.dir);
    const before = (await driverRequests(c.cluster, k.nodeId)).length;
    proxy.unblock();

    // The proxy closed the driver's connections as a restarting API server does; the fetch transport
    // does not report that on a watch stream, so the driver notices by the missing bookmarks (one a
    // minute): 75 s, not the watch timeout plus a minute (6 min) as before.
    await eventually(
      "the change made while the driver was cut off",
      async () => (await secretData(admin, ns.name, "app"))?.v2 === "s3cr3t",
      120_000,
    );
    // The driver's watches resumed from versions older than the compaction and had to list again.
    const after = (await driverRequests(c.cluster, k.nodeId)).slice(before);
    const relisted = after.filter((e) => e.verb === "list").map((e) => e.objectRef?.resource);
    assert.ok(
      relisted.includes("secretproviderclasses"),
      `requests after the restart: ${JSON.stringify(after)}`,
    );
    assert.ok(compacted > 0);

    // The SPCPS informer works again too: a new pod's status is seen and its Secret written.
    await createSpc(admin, ns.name, "second", {
      secretObjects: [{ secretName: "second", type: "Opaque", data: [{ objectName: "secret", key: "k" }] }],
    });
    await k.driver.client.nodePublishVolume(
      k.publishRequest(await createPod(admin, ns.name, "second"), "second"),
    );
    await eventually("the second secret", async () => await secretData(admin, ns.name, "second"));
  } finally {
    await k.close();
  }
});
