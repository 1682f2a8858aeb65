/**
 * The Secret sync reads only volumes this driver mounted, for the pod the SPCPS names: a real driver with
 * real tmpfs volumes and the API stand-in, and SPCPS objects written by hand that point elsewhere (a
 * directory with a service account token, another pod's volume). Each is refused and reported; no Secret
 * is written from it.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import {
  type ApiServer,
  type KubeObject,
  SECRETS_STORE_GROUP,
  startApiServer,
} from "../support/apiserver.ts";
import { requireRoot } from "../support/root.ts";
import { NODE_LABEL, NS, putPod, putSpc, startK8sDriver, waitFor } from "./k8s_harness.ts";

requireRoot();

const SYNCED = {
  secretObjects: [{ secretName: "copied", type: "Opaque", data: [{ objectName: "token", key: "t" }] }],
};

/** An SPCPS for `pod` of class `spc` on node-1, as anyone allowed to create SPCPS objects can write it. */
function forgedSpcps(server: ApiServer, pod: KubeObject, spc: string, targetPath: string): void {
  server.put({
    apiVersion: `${SECRETS_STORE_GROUP}/v1`,
    kind: "SecretProviderClassPodStatus",
    metadata: {
      name: `${pod.metadata.name}-${NS}-${spc}`,
      namespace: NS,
      labels: { [NODE_LABEL]: "node-1" },
      ownerReferences: [{ apiVersion: "v1", kind: "Pod", name: pod.metadata.name!, uid: pod.metadata.uid! }],
    },
    status: {
      podName: pod.metadata.name,
      secretProviderClassName: spc,
      mounted: true,
      targetPath,
      objects: [],
    },
  });
}

const warnings = (server: ApiServer, pod: string) =>
  server.list("events", { namespace: NS })
    .filter((e) => (e.involvedObject as { name: string }).name === pod)
    .map((e) => String(e.message));

Deno.test("an SPCPS pointing at a directory this driver did not mount is refused: event and metric, no Secret", async () => {
  await using server = await startApiServer();
  putSpc(server, "steal", SYNCED);
  const pod = putPod(server, "thief");
  const k = await startK8sDriver(server);
  const elsewhere = await Deno.makeTempDir({ prefix: "sscsi-not-a-volume-" });
  try {
    await Deno.writeTextFile(join(elsewhere, "token"), "a projected service account token");
    forgedSpcps(server, pod, "steal", elsewhere);
    await waitFor("the refusal", () => warnings(server, "thief").length > 0);
    assert.deepEqual(warnings(server, "thief"), [
      `refusing to sync from ${elsewhere}: it is not a volume this driver mounted`,
    ]);
    assert.deepEqual(k.metrics.errors, [{ provider: "test", errorType: "TargetPathNotMountedByDriver" }]);
    assert.equal(server.get("Secret", NS, "copied"), undefined);
  } finally {
    await k.close();
    await Deno.remove(elsewhere, { recursive: true });
  }
});

Deno.test("an SPCPS naming one pod and pointing at another pod's volume is refused; the real one syncs", async () => {
  await using server = await startApiServer();
  putSpc(server, "steal", SYNCED);
  const victim = putPod(server, "victim");
  const thief = putPod(server, "thief");
  const k = await startK8sDriver(server);
  try {
    k.driver.provider.behaviour = { files: [{ path: "token", contents: "victim's secret" }] };
    await k.driver.client.nodePublishVolume(k.publishRequest(victim, "steal"));
    await waitFor("the victim's own Secret", () => server.get("Secret", NS, "copied"));
    forgedSpcps(server, thief, "steal", k.driver.target("victim"));
    await waitFor("the refusal", () => warnings(server, "thief").length > 0);
    assert.deepEqual(warnings(server, "thief"), [
      `refusing to sync from ${k.driver.target("victim")}: it was mounted for another pod than ${NS}/thief`,
    ]);
    assert.deepEqual(warnings(server, "victim"), []);
  } finally {
    await k.close();
  }
});
