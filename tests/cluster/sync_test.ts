/**
 * Sync as Kubernetes Secret against the real control plane: the driver (as its ServiceAccount) reads the
 * mounted tmpfs files and writes Secrets the real API server validates; kube-controller-manager's garbage
 * collector removes them with their owners; Events land in the pod's namespace.
 */
import assert from "node:assert/strict";
import { type K8sDriver, NODE_LABEL } from "../integration/k8s_harness.ts";
import {
  createPod,
  createSpc,
  eventually,
  type KubeObject,
  restPath,
  secretData,
  sharedCluster,
  testNamespace,
} from "../support/cluster.ts";
import { requireRoot } from "../support/root.ts";
import { startClusterDriver } from "./harness.ts";

requireRoot();
const cluster = sharedCluster();
const { admin } = cluster;
const MANAGED = "secrets-store.csi.k8s.io/managed";
const SPC_GROUP = "secrets-store.csi.x-k8s.io";

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

async function syncedSecrets(ns: string): Promise<KubeObject[]> {
  return await admin.list(`/api/v1/namespaces/${ns}/secrets?labelSelector=${MANAGED}%3Dtrue`);
}

async function eventsFor(ns: string, pod: string): Promise<KubeObject[]> {
  return (await admin.list(`/api/v1/namespaces/${ns}/events`))
    .filter((e) => (e.involvedObject as { name: string }).name === pod);
}

async function publish(k: K8sDriver, pod: KubeObject, spc: string): Promise<void> {
  await k.driver.client.nodePublishVolume(k.publishRequest(pod, spc));
}

Deno.test("all 8 Secret types are synced with labels, annotations and owner, accepted by the real server, and collected with the pod", async () => {
  await using ns = await testNamespace(admin);
  const { bundle, cert } = await pemBundle();
  const entry = (secretName: string, type: string, data: [string, string][], annotations = {}) => ({
    secretName,
    type,
    labels: { team: "a" },
    annotations: { "example.com/note": secretName, ...annotations },
    data: data.map(([objectName, key]) => ({ objectName, key })),
  });
  await createSpc(admin, ns.name, "all-types", {
    secretObjects: [
      entry("opaque", "Opaque", [["username", "user"], ["nested/deep", "deep"]]),
      // The server requires the account annotation on this type (and the token controller then adds
      // ca.crt and namespace for an account that exists).
      entry("sa-token", "kubernetes.io/service-account-token", [["token", "token"]], {
        "kubernetes.io/service-account.name": "default",
      }),
      entry("dockercfg", "kubernetes.io/dockercfg", [["dockercfg", ".dockercfg"]]),
      entry("dockerjson", "kubernetes.io/dockerconfigjson", [["dockerjson", ".dockerconfigjson"]]),
      entry("basic", "kubernetes.io/basic-auth", [["username", "username"], ["password", "password"]]),
      entry("ssh", "kubernetes.io/ssh-auth", [["ssh", "ssh-privatekey"]]),
      entry("tls", "kubernetes.io/tls", [["bundle.pem", "tls.crt"], ["bundle.pem", "tls.key"]]),
      entry("bootstrap", "bootstrap.kubernetes.io/token", [["token", "token-id"]]),
    ],
  });
  const pod = await createPod(admin, ns.name, "app");
  const k = await startClusterDriver(cluster);
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
    await eventually("eight secrets", async () => (await syncedSecrets(ns.name)).length === 8);
    const secrets = await syncedSecrets(ns.name);
    assert.deepEqual(secrets.map((s) => s.metadata.name).sort(), names);
    assert.deepEqual(await eventsFor(ns.name, "app"), [], "no sync failure reported");

    const spcps = await admin.get(
      restPath(`${SPC_GROUP}/v1`, "secretproviderclasspodstatuses", ns.name, `app-${ns.name}-all-types`),
    );
    const types: Record<string, string> = {};
    for (const secret of secrets) {
      const name = secret.metadata.name!;
      types[name] = secret.type as string;
      assert.deepEqual(secret.metadata.labels, { team: "a", [MANAGED]: "true" }, name);
      const annotations = { ...secret.metadata.annotations };
      if (name === "sa-token") {
        // The token controller records the account's uid next to its name.
        assert.match(annotations["kubernetes.io/service-account.uid"], /^[0-9a-f-]{36}$/);
        delete annotations["kubernetes.io/service-account.uid"];
        assert.equal(annotations["kubernetes.io/service-account.name"], "default");
        delete annotations["kubernetes.io/service-account.name"];
      }
      assert.deepEqual(annotations, { "example.com/note": name }, name);
      // A pod without owners: the SPCPS owns the Secret (and the pod owns the SPCPS).
      assert.deepEqual(secret.metadata.ownerReferences, [{
        apiVersion: `${SPC_GROUP}/v1`,
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
    assert.deepEqual(await secretData(admin, ns.name, "opaque"), { user: "admin", deep: "down" });
    assert.deepEqual(await secretData(admin, ns.name, "basic"), { username: "admin", password: "s3cr3t" });
    assert.deepEqual(await secretData(admin, ns.name, "dockerjson"), { ".dockerconfigjson": '{"auths":{}}' });
    assert.equal((await secretData(admin, ns.name, "sa-token"))?.token, "abcdef.0123456789abcdef");
    const tls = (await secretData(admin, ns.name, "tls"))!;
    assert.equal(tls["tls.crt"], cert);
    assert.match(
      tls["tls.key"],
      /^-----BEGIN RSA PRIVATE KEY-----\n[\s\S]+\n-----END RSA PRIVATE KEY-----\n$/,
    );
    await eventually("the sync metric", () => k.metrics.synced.length > 0);
    assert.deepEqual(k.metrics.synced, [{ provider: "test", count: 8 }]);
    assert.deepEqual(k.metrics.errors, []);

    // The pod goes: the collector removes its SPCPS by owner reference, then the Secrets it owns.
    await k.driver.client.nodeUnpublishVolume({ volume_id: "v", target_path: k.driver.target("app") });
    await admin.delete(restPath("v1", "pods", ns.name, "app"));
    await eventually(
      "the garbage collector to delete the synced Secrets",
      async () => (await syncedSecrets(ns.name)).length === 0,
      60_000,
    );
  } finally {
    await k.close();
  }
});

Deno.test("a Deployment's pod: the Secret is owned by its ReplicaSet, follows secretObjects changes and rotation, and goes with the Deployment", async () => {
  await using ns = await testNamespace(admin);
  const spc = await createSpc(admin, ns.name, "rotating", {
    secretObjects: [{ secretName: "db", type: "Opaque", data: [{ objectName: "pw", key: "password" }] }],
  });
  // The real deployment and replica set controllers make the pod (no scheduler runs: it stays Pending).
  await admin.create("deployments", {
    apiVersion: "apps/v1",
    kind: "Deployment",
    metadata: { name: "web", namespace: ns.name },
    spec: {
      replicas: 1,
      selector: { matchLabels: { app: "web" } },
      template: {
        metadata: { labels: { app: "web" } },
        spec: { containers: [{ name: "app", image: "registry.invalid/app:1" }] },
      },
    },
  });
  const pod = await eventually("the Deployment's pod", async () => {
    const [found] = await admin.list(`/api/v1/namespaces/${ns.name}/pods?labelSelector=app%3Dweb`);
    return found;
  });
  const replicaSet = pod.metadata.ownerReferences!.find((r) => r.kind === "ReplicaSet")!;
  const k = await startClusterDriver(cluster, { rotation: { enabled: true, pollIntervalMs: 0 } });
  try {
    k.driver.provider.behaviour = { files: [{ path: "pw", contents: "one" }] };
    await publish(k, pod, "rotating");
    await eventually("the secret", async () => (await secretData(admin, ns.name, "db"))?.password === "one");
    const secret = await admin.get(restPath("v1", "secrets", ns.name, "db"));
    assert.deepEqual(secret.metadata.ownerReferences, [
      { apiVersion: "apps/v1", kind: "ReplicaSet", name: replicaSet.name, uid: replicaSet.uid },
    ]);

    // The class changes: the next republish (kubelet's periodic one) rewrites the Secret.
    const current = await admin.get(
      restPath(`${SPC_GROUP}/v1`, "secretproviderclasses", ns.name, "rotating"),
    );
    await admin.put(restPath(`${SPC_GROUP}/v1`, "secretproviderclasses", ns.name, "rotating"), {
      ...current,
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
    await eventually("the new key", async () => {
      await publish(k, pod, "rotating");
      return (await secretData(admin, ns.name, "db"))?.pass === "one";
    });
    assert.deepEqual(await secretData(admin, ns.name, "db"), { pass: "one" });
    assert.equal((await admin.get(restPath("v1", "secrets", ns.name, "db"))).metadata.labels?.tier, "db");

    // Rotation: the provider's new version reaches the mounted file, the SPCPS and the Secret.
    k.driver.provider.behaviour = {
      files: [{ path: "pw", contents: "two" }],
      objectVersions: [{ id: "pw", version: "2" }],
    };
    await publish(k, pod, "rotating");
    await eventually(
      "the rotated value",
      async () => (await secretData(admin, ns.name, "db"))?.pass === "two",
    );
    const status = await admin.get(
      restPath(
        `${SPC_GROUP}/v1`,
        "secretproviderclasspodstatuses",
        ns.name,
        `${pod.metadata.name}-${ns.name}-rotating`,
      ),
    );
    assert.deepEqual((status.status as { objects: unknown }).objects, [{ id: "pw", version: "2" }]);
    assert.equal(status.metadata.labels?.[NODE_LABEL], k.nodeId);
    assert.deepEqual(k.metrics.errors, []);

    // Deleting the Deployment: replica set, pod, SPCPS and the synced Secret all go (foreground deletion).
    await admin.delete(restPath("apps/v1", "deployments", ns.name, "web"), {
      propagationPolicy: "Foreground",
    });
    await eventually(
      "the garbage collector to delete the Secret",
      async () => (await admin.find(restPath("v1", "secrets", ns.name, "db"))) === undefined,
      60_000,
    );
  } finally {
    await k.close();
  }
});

Deno.test("invalid secretObjects and a Secret the server refuses each yield a Warning event with the reason; the valid ones sync", async () => {
  await using ns = await testNamespace(admin);
  await createSpc(admin, ns.name, "broken", {
    secretObjects: [
      { type: "Opaque", data: [{ objectName: "pw", key: "k" }] },
      { secretName: "no-type", data: [{ objectName: "pw", key: "k" }] },
      { secretName: "no-data", type: "Opaque", data: [] },
      { secretName: "not-mounted", type: "Opaque", data: [{ objectName: "absent", key: "k" }] },
      // Valid for the driver; the API server requires the account annotation for this type.
      {
        secretName: "refused",
        type: "kubernetes.io/service-account-token",
        data: [{ objectName: "pw", key: "token" }],
      },
      { secretName: "good", type: "Opaque", data: [{ objectName: "pw", key: "k" }] },
    ],
  });
  const pod = await createPod(admin, ns.name, "bad");
  const k = await startClusterDriver(cluster, {
    tuning: { syncBackoffMs: { initial: 60_000, max: 60_000 } },
  });
  try {
    k.driver.provider.behaviour = { files: [{ path: "pw", contents: "s3cr3t" }] };
    await publish(k, pod, "broken");
    const events = await eventually("five events", async () => {
      const found = await eventsFor(ns.name, "bad");
      return found.length === 5 ? found : undefined;
    });
    for (const e of events) {
      assert.equal(e.reason, "FailedToCreateSecret");
      assert.equal(e.type, "Warning");
      assert.equal((e.source as { component: string }).component, "csi-secrets-store-controller");
      assert.equal((e.involvedObject as { uid: string }).uid, pod.metadata.uid);
    }
    const messages = events.map((e) => e.message as string);
    const expected = [
      new RegExp(`secretObjects\\[0\\] of secretproviderclass ${ns.name}/broken: secretName is empty`),
      /secretObjects\[1\] .*: type is empty/,
      /secretObjects\[2\] .*: data is empty/,
      /secretObjects\[3\] .*file matching objectName absent not found in the pod/,
      /could not create secret .*refused.*kubernetes\.io\/service-account\.name.*HTTP 422/,
    ];
    for (const pattern of expected) {
      assert.ok(
        messages.some((m) => pattern.test(m)),
        `no event matches ${pattern}:\n${messages.join("\n")}`,
      );
    }
    // Each failure is counted with its type (events go out once per failure and interval).
    const count = (type: string) => k.metrics.errors.filter((e) => e.errorType === type).length;
    assert.ok(count("InvalidSecretObject") >= 3, JSON.stringify(k.metrics.errors));
    assert.ok(count("SecretObjectNotMounted") >= 1, JSON.stringify(k.metrics.errors));
    assert.ok(count("FailedToWriteSecret") >= 1, JSON.stringify(k.metrics.errors));
    assert.ok(k.metrics.errors.every((e) => e.provider === "test"));
    await eventually("the valid secret", async () => await secretData(admin, ns.name, "good"));
    assert.deepEqual(await secretData(admin, ns.name, "good"), { k: "s3cr3t" });
    assert.equal(await admin.find(restPath("v1", "secrets", ns.name, "refused")), undefined);

    // Still running: another pod's class syncs.
    await createSpc(admin, ns.name, "fine", {
      secretObjects: [{ secretName: "later", type: "Opaque", data: [{ objectName: "pw", key: "k" }] }],
    });
    await publish(k, await createPod(admin, ns.name, "good-pod"), "fine");
    await eventually("the other secret", async () => await secretData(admin, ns.name, "later"));
  } finally {
    await k.close();
  }
});
