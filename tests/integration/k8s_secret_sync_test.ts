/**
 * Sync as Kubernetes Secret end to end: pods publish real tmpfs volumes, the controller reads them and
 * writes Secrets into the API-server stand-in, whose garbage collector removes them with their owners.
 */
import assert from "node:assert/strict";
import { type ApiServer, type KubeObject, startApiServer } from "../support/apiserver.ts";
import { requireRoot } from "../support/root.ts";
import { type K8sDriver, NS, putPod, putSpc, secretData, startK8sDriver, waitFor } from "./k8s_harness.ts";

requireRoot();

const MANAGED = "secrets-store.csi.k8s.io/managed";

/** A PEM bundle: a certificate block (opaque bytes suffice) and a real PKCS#8 RSA key. */
async function pemBundle(): Promise<{ bundle: string; cert: string }> {
  const key = await crypto.subtle.generateKey(
    {
      name: "RSASSA-PKCS1-v1_5",
      modulusLength: 1024,
      publicExponent: new Uint8Array([1, 0, 1]),
      hash: "SHA-256",
    },
    true,
    ["sign", "verify"],
  );
  const pkcs8 = new Uint8Array(await crypto.subtle.exportKey("pkcs8", key.privateKey));
  const b64 = (bytes: Uint8Array) => btoa(String.fromCharCode(...bytes)).replace(/.{64}/g, "$&\n").trim();
  const cert = `-----BEGIN CERTIFICATE-----\n${b64(new Uint8Array(48).fill(7))}\n-----END CERTIFICATE-----\n`;
  return { bundle: `${cert}-----BEGIN PRIVATE KEY-----\n${b64(pkcs8)}\n-----END PRIVATE KEY-----\n`, cert };
}

const syncedSecrets = (server: ApiServer) =>
  server.list("secrets", { namespace: NS, labelSelector: `${MANAGED}=true` }).map((s) => s.metadata.name)
    .sort();

function eventsFor(server: ApiServer, pod: string): KubeObject[] {
  return server.list("events", { namespace: NS })
    .filter((e) => (e.involvedObject as { name: string }).name === pod);
}

async function publish(k: K8sDriver, pod: KubeObject, spc: string): Promise<void> {
  await k.driver.client.nodePublishVolume(k.publishRequest(pod, spc));
}

Deno.test("every secret type is synced with its labels, annotations and the managed label, and goes with the pod", async () => {
  await using server = await startApiServer();
  const { bundle, cert } = await pemBundle();
  const entry = (secretName: string, type: string, data: [string, string][]) => ({
    secretName,
    type,
    labels: { team: "a" },
    annotations: { "example.com/note": secretName },
    data: data.map(([objectName, key]) => ({ objectName, key })),
  });
  putSpc(server, "all-types", {
    secretObjects: [
      entry("opaque", "Opaque", [["username", "user"], ["nested/deep", "deep"]]),
      entry("sa-token", "kubernetes.io/service-account-token", [["token", "token"]]),
      entry("dockercfg", "kubernetes.io/dockercfg", [["dockercfg", ".dockercfg"]]),
      entry("dockerjson", "kubernetes.io/dockerconfigjson", [["dockerjson", ".dockerconfigjson"]]),
      entry("basic", "kubernetes.io/basic-auth", [["username", "username"], ["password", "password"]]),
      entry("ssh", "kubernetes.io/ssh-auth", [["ssh", "ssh-privatekey"]]),
      entry("tls", "kubernetes.io/tls", [["bundle.pem", "tls.crt"], ["bundle.pem", "tls.key"]]),
      entry("bootstrap", "bootstrap.kubernetes.io/token", [["token", "token-id"]]),
    ],
  });
  const pod = putPod(server, "app");
  const k = await startK8sDriver(server);
  try {
    k.driver.provider.behaviour = {
      files: [
        { path: "username", contents: "admin" },
        { path: "password", contents: "s3cr3t" },
        { path: "token", contents: "abcdef.0123456789abcdef" },
        { path: "dockercfg", contents: '{"r.io":{"auth":"x"}}' },
        { path: "dockerjson", contents: '{"auths":{}}' },
        { path: "ssh", contents: "ssh-key" },
        { path: "bundle.pem", contents: bundle },
        { path: "nested/deep", contents: "down" },
      ],
    };
    await publish(k, pod, "all-types");
    const names = ["basic", "bootstrap", "dockercfg", "dockerjson", "opaque", "sa-token", "ssh", "tls"];
    await waitFor("eight secrets", () => syncedSecrets(server).length === 8);
    assert.deepEqual(syncedSecrets(server), names);

    const spcps = server.get("SecretProviderClassPodStatus", NS, "app-default-all-types")!;
    const types: Record<string, string> = {};
    for (const name of names) {
      const secret = server.get("Secret", NS, name)!;
      types[name] = secret.type as string;
      assert.deepEqual(secret.metadata.labels, { team: "a", [MANAGED]: "true" }, name);
      assert.deepEqual(secret.metadata.annotations, { "example.com/note": name }, name);
      // A pod without owners: the SPCPS owns the Secret (and the pod owns the SPCPS).
      assert.deepEqual(secret.metadata.ownerReferences, [{
        apiVersion: "secrets-store.csi.x-k8s.io/v1",
        kind: "SecretProviderClassPodStatus",
        name: spcps.metadata.name,
        uid: spcps.metadata.uid,
      }], name);
    }
    assert.deepEqual(types, {
      basic: "kubernetes.io/basic-auth",
      bootstrap: "bootstrap.kubernetes.io/token",
      dockercfg: "kubernetes.io/dockercfg",
      dockerjson: "kubernetes.io/dockerconfigjson",
      opaque: "Opaque",
      "sa-token": "kubernetes.io/service-account-token",
      ssh: "kubernetes.io/ssh-auth",
      tls: "kubernetes.io/tls",
    });
    assert.deepEqual(secretData(server, "opaque"), { user: "admin", deep: "down" });
    assert.deepEqual(secretData(server, "basic"), { username: "admin", password: "s3cr3t" });
    assert.deepEqual(secretData(server, "dockerjson"), { ".dockerconfigjson": '{"auths":{}}' });
    const tls = secretData(server, "tls")!;
    assert.equal(tls["tls.crt"], cert);
    assert.match(
      tls["tls.key"],
      /^-----BEGIN RSA PRIVATE KEY-----\n[\s\S]+\n-----END RSA PRIVATE KEY-----\n$/,
    );
    // The metric is reported once the whole pass is done, which may be just after the last Secret landed.
    await waitFor("the sync metric", () => k.metrics.synced.length > 0);
    assert.deepEqual(k.metrics.synced, [{ provider: "test", count: 8 }]);
    assert.deepEqual(k.metrics.errors, []);

    // The pod goes: its SPCPS goes by owner reference, and the Secrets with it.
    await k.driver.client.nodeUnpublishVolume({ volume_id: "v", target_path: k.driver.target("app") });
    server.delete("Pod", NS, "app");
    assert.deepEqual(syncedSecrets(server), []);
  } finally {
    await k.close();
  }
});

Deno.test("a secretObjects change and a rotation reach the Secret on the next republish; owners are the pod's owners", async () => {
  await using server = await startApiServer();
  const spc = putSpc(server, "rotating", {
    secretObjects: [{ secretName: "db", type: "Opaque", data: [{ objectName: "pw", key: "password" }] }],
  });
  const replicaSet = { apiVersion: "apps/v1", kind: "ReplicaSet", name: "web-7c9", uid: crypto.randomUUID() };
  const pod = putPod(server, "web-7c9-x", [{ ...replicaSet, controller: true, blockOwnerDeletion: true }]);
  const k = await startK8sDriver(server, { rotation: { enabled: true, pollIntervalMs: 0 } });
  try {
    k.driver.provider.behaviour = { files: [{ path: "pw", contents: "one" }] };
    await publish(k, pod, "rotating");
    await waitFor("the secret", () => secretData(server, "db")?.password === "one");
    assert.deepEqual(server.get("Secret", NS, "db")!.metadata.ownerReferences, [replicaSet]);

    server.put({
      ...spc,
      spec: {
        ...(spc.spec as object),
        secretObjects: [{
          secretName: "db",
          type: "Opaque",
          labels: { tier: "db" },
          data: [{ objectName: "pw", key: "pass" }],
        }],
      },
    });
    await publish(k, pod, "rotating"); // kubelet's periodic republish
    await waitFor("the new key", () => secretData(server, "db")?.pass === "one");
    assert.deepEqual(secretData(server, "db"), { pass: "one" });
    assert.equal(server.get("Secret", NS, "db")!.metadata.labels?.tier, "db");

    k.driver.provider.behaviour = {
      files: [{ path: "pw", contents: "two" }],
      objectVersions: [{ id: "pw", version: "2" }],
    };
    await publish(k, pod, "rotating");
    await waitFor("the rotated value", () => secretData(server, "db")?.pass === "two");
    const status = server.get("SecretProviderClassPodStatus", NS, `web-7c9-x-${NS}-rotating`)!;
    assert.deepEqual((status.status as { objects: unknown }).objects, [{ id: "pw", version: "2" }]);
    assert.deepEqual(k.metrics.errors, []);
  } finally {
    await k.close();
  }
});

Deno.test("invalid secretObjects each yield an event and an error metric; the valid ones sync and the controller runs on", async () => {
  await using server = await startApiServer();
  putSpc(server, "broken", {
    secretObjects: [
      { type: "Opaque", data: [{ objectName: "pw", key: "k" }] },
      { secretName: "no-type", data: [{ objectName: "pw", key: "k" }] },
      { secretName: "no-data", type: "Opaque", data: [] },
      { secretName: "not-mounted", type: "Opaque", data: [{ objectName: "absent", key: "k" }] },
      { secretName: "good", type: "Opaque", data: [{ objectName: "pw", key: "k" }] },
    ],
  });
  putSpc(server, "fine", {
    secretObjects: [{ secretName: "later", type: "Opaque", data: [{ objectName: "pw", key: "k" }] }],
  });
  const pod = putPod(server, "bad");
  const k = await startK8sDriver(server, { tuning: { syncBackoffMs: { initial: 60_000, max: 60_000 } } });
  try {
    k.driver.provider.behaviour = { files: [{ path: "pw", contents: "s3cr3t" }] };
    await publish(k, pod, "broken");
    await waitFor("four events", () => eventsFor(server, "bad").length === 4);
    const events = eventsFor(server, "bad");
    assert.ok(events.every((e) => e.reason === "FailedToCreateSecret" && e.type === "Warning"));
    const messages = events.map((e) => e.message as string).sort();
    assert.match(
      messages[0],
      /secretObjects\[0\] of secretproviderclass default\/broken: secretName is empty/,
    );
    assert.match(messages[1], /secretObjects\[1\] of secretproviderclass default\/broken: type is empty/);
    assert.match(messages[2], /secretObjects\[2\] of secretproviderclass default\/broken: data is empty/);
    assert.match(messages[3], /secretObjects\[3\] .*file matching objectName absent not found in the pod/);
    // Every sync of the status counts its failures (events go out once per failure and interval).
    const count = (type: string) => k.metrics.errors.filter((e) => e.errorType === type).length;
    assert.ok(count("InvalidSecretObject") >= 3, JSON.stringify(k.metrics.errors));
    assert.ok(count("SecretObjectNotMounted") >= 1, JSON.stringify(k.metrics.errors));
    assert.equal(count("InvalidSecretObject") + count("SecretObjectNotMounted"), k.metrics.errors.length);
    assert.ok(k.metrics.errors.every((e) => e.provider === "test"));
    await waitFor("the valid secret", () => secretData(server, "good"));
    assert.deepEqual(secretData(server, "good"), { k: "s3cr3t" });

    // Still running: another pod's class syncs.
    await publish(k, putPod(server, "good-pod"), "fine");
    await waitFor("the other secret", () => secretData(server, "later"));
  } finally {
    await k.close();
  }
});

Deno.test("the sync controller recovers when the API server comes back: watches re-established, no update lost", async () => {
  await using server = await startApiServer();
  const spc = putSpc(server, "app", {
    secretObjects: [{ secretName: "app", type: "Opaque", data: [{ objectName: "secret", key: "v1" }] }],
  });
  const pod = putPod(server, "app");
  const k = await startK8sDriver(server);
  try {
    await publish(k, pod, "app");
    await waitFor("the secret", () => secretData(server, "app")?.v1);
    await waitFor("both watches", () => server.openWatches === 2);

    await server.stop();
    // Changed while the driver cannot see it: the restarted server's watch cache has forgotten it.
    server.put({
      ...spc,
      spec: {
        ...(spc.spec as object),
        secretObjects: [{ secretName: "app", type: "Opaque", data: [{ objectName: "secret", key: "v2" }] }],
      },
    });
    await server.restart();

    await waitFor("the change made while the server was down", () => secretData(server, "app")?.v2);
    await waitFor("both watches again", () => server.openWatches === 2);
    // The SPCPS watch works again: a new pod's status is seen and its Secret written.
    putSpc(server, "second", {
      secretObjects: [{ secretName: "second", type: "Opaque", data: [{ objectName: "secret", key: "k" }] }],
    });
    await publish(k, putPod(server, "second"), "second");
    await waitFor("the second secret", () => secretData(server, "second"));
  } finally {
    await k.close();
  }
});
