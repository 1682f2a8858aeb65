/**
 * lib/k8s/api.ts, rate-limit.ts and setup.ts: the calls the driver may make, what every request carries,
 * errors as one sentence naming the object, the token bucket, and how the cluster configuration is found.
 */
import { KubeConfig } from "@kubernetes/client-node";
import assert from "node:assert/strict";
import { API_CALLS, KubeApi, KubeApiError } from "../../lib/k8s/api.ts";
import { TokenBucket } from "../../lib/k8s/rate-limit.ts";
import { findClusterConfig, SERVICE_ACCOUNT_TOKEN, startKubernetes } from "../../lib/k8s/setup.ts";
import { GrpcStatus } from "../../lib/errors.ts";
import { noMetrics } from "../../lib/metrics.ts";
import { silentLogger } from "../../lib/log.ts";
import { startApiServer } from "../support/apiserver.ts";

const api = (kc: KubeConfig, timeoutMs = 2_000) =>
  new KubeApi(kc, { userAgent: "sscsi-test/1.2.3", timeoutMs });

Deno.test("API_CALLS: exactly the calls the driver makes; any other call is refused before a request", async () => {
  assert.deepEqual(API_CALLS, [
    {
      group: "secrets-store.csi.x-k8s.io",
      resource: "secretproviderclasses",
      verbs: ["get", "list", "watch"],
    },
    {
      group: "secrets-store.csi.x-k8s.io",
      resource: "secretproviderclasspodstatuses",
      verbs: ["create", "get", "list", "update", "watch"],
    },
    { group: "", resource: "pods", verbs: ["get"] },
    { group: "", resource: "events", verbs: ["create"] },
    { group: "", resource: "secrets", verbs: ["create", "get", "update"] },
  ]);
  await using server = await startApiServer();
  const client = api(server.kubeConfig());
  await assert.rejects(
    client.update("pods", { metadata: { name: "p", namespace: "default" } }),
    /the driver does not update pods: add it to API_CALLS and the RBAC/,
  );
  await assert.rejects(client.list("secrets"), /does not list secrets/);
  assert.equal(server.countRequests(), 0);
  await client.close();
});

Deno.test("requests carry the driver's user agent and the kubeconfig's credentials", async () => {
  const seen: Headers[] = [];
  await using listener = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (req) => {
    seen.push(req.headers);
    return Response.json({ kind: "Pod", apiVersion: "v1", metadata: { name: "p" } });
  });
  const kc = new KubeConfig();
  kc.loadFromClusterAndUser(
    { name: "c", server: `http://127.0.0.1:${listener.addr.port}`, skipTLSVerify: true },
    { name: "u", token: "t0ken" },
  );
  const client = api(kc);
  assert.equal((await client.get("pods", "default", "p")).metadata.name, "p");
  assert.equal(seen[0].get("user-agent"), "sscsi-test/1.2.3");
  assert.equal(seen[0].get("authorization"), "Bearer t0ken");
  await client.close();
});

Deno.test("API errors are one sentence naming the object, with a fitting gRPC code", async () => {
  await using server = await startApiServer();
  const client = api(server.kubeConfig(), 200);
  const failure = async (call: Promise<unknown>) => {
    try {
      await call;
    } catch (err) {
      assert.ok(err instanceof KubeApiError);
      return err;
    }
    throw new Error("the call succeeded");
  };

  const missing = await failure(client.get("spcs", "default", "nope"));
  assert.equal(missing.code, GrpcStatus.NOT_FOUND);
  assert.ok(missing.notFound);
  assert.match(
    missing.message,
    /^could not get secretproviderclass default\/nope: .*"nope" not found \(HTTP 404 NotFound\)$/,
  );

  server.put({ apiVersion: "v1", kind: "Secret", metadata: { name: "s", namespace: "default" } });
  const exists = await failure(client.create("secrets", "default", { metadata: { name: "s" } }));
  assert.ok(exists.conflict);
  assert.match(
    exists.message,
    /^could not create secret default\/s: .*already exists \(HTTP 409 AlreadyExists\)$/,
  );

  server.pause("hang");
  const slow = await failure(client.get("pods", "default", "p"));
  assert.equal(slow.code, GrpcStatus.UNAVAILABLE);
  assert.equal(slow.message, "could not get pod default/p: the API server did not answer within 200 ms");
  server.resume();

  await server.stop();
  const down = await failure(client.list("spcs"));
  assert.equal(down.code, GrpcStatus.UNAVAILABLE);
  assert.equal(
    down.message,
    `could not list secretproviderclasses in all namespaces: the API server at ${server.url} refused the connection`,
  );
  await client.close();
});

Deno.test("token bucket: a burst at once, then the sustained rate, waiters served in order", async () => {
  let now = 0;
  const bucket = new TokenBucket(1000, 2, () => now);
  assert.equal(bucket.tryTake(), true);
  assert.equal(bucket.tryTake(), true);
  assert.equal(bucket.tryTake(), false);
  now += 1;
  assert.equal(bucket.tryTake(), true, "one token per millisecond at 1000 qps");
  const order: number[] = [];
  const waiting = [1, 2, 3].map((i) => bucket.take().then(() => order.push(i)));
  // The clock moves a token's worth at a time (the bucket holds at most `burst`); they go in order.
  const clock = setInterval(() => now += 1, 1);
  await Promise.all(waiting);
  clearInterval(clock);
  assert.deepEqual(order, [1, 2, 3]);
  const aborted = new AbortController();
  const gone = bucket.take(aborted.signal);
  aborted.abort(new Error("stopped"));
  await assert.rejects(gone, /stopped/);
  assert.throws(() => new TokenBucket(0, 1), /invalid rate limit/);
});

Deno.test("cluster configuration: --kubeconfig, then $KUBECONFIG, then the in-cluster account, else standalone", async () => {
  const environment = (env: Record<string, string>, files: string[] = []) => ({
    env: (name: string) => env[name],
    exists: (path: string) => files.includes(path),
  });
  const inCluster = { KUBERNETES_SERVICE_HOST: "10.0.0.1", KUBERNETES_SERVICE_PORT: "443" };
  assert.deepEqual(
    findClusterConfig("/etc/kc", environment({ KUBECONFIG: "/x", ...inCluster }, [SERVICE_ACCOUNT_TOKEN])),
    { source: "kubeconfig", path: "/etc/kc" },
  );
  assert.deepEqual(findClusterConfig(undefined, environment({ KUBECONFIG: "/a:/b", ...inCluster })), {
    source: "KUBECONFIG",
    paths: "/a:/b",
  });
  assert.deepEqual(findClusterConfig(undefined, environment(inCluster, [SERVICE_ACCOUNT_TOKEN])), {
    source: "in-cluster",
  });
  assert.equal(findClusterConfig(undefined, environment(inCluster)), null, "no token: not in a cluster");
  assert.equal(findClusterConfig(undefined, environment({})), null);

  const options = {
    nodeId: "n",
    log: silentLogger,
    metrics: noMetrics,
    reader: { read: () => Promise.resolve(null) },
    volumes: { podUid: () => undefined },
  };
  assert.equal(await startKubernetes({ ...options, environment: environment({}) }), null);
  await assert.rejects(
    startKubernetes({ ...options, kubeconfig: "/nonexistent/kubeconfig", environment: environment({}) }),
    /cannot load the cluster configuration from --kubeconfig \/nonexistent\/kubeconfig: .*ENOENT|No such file/,
  );
});
