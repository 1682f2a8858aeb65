/**
 * What the real control plane (tests/cluster/) cannot be made to do, against the API-server stand-in:
 * a server that accepts connections and requests but never answers (a hung API server, or one behind a
 * stalled load balancer). A real kube-apiserver answers or refuses; it cannot be paused mid-request.
 * Real gRPC, real tmpfs, a real provider on a unix socket.
 */
import assert from "node:assert/strict";
import { GrpcStatus } from "../../lib/errors.ts";
import { startApiServer } from "../support/apiserver.ts";
import { requireRoot } from "../support/root.ts";
import { assertGrpcError, NS, putPod, putSpc, startK8sDriver, waitFor } from "./k8s_harness.ts";

requireRoot();

Deno.test("stand-in fault, a hung API server (and a stopped one): the publish fails with a clear error and leaves no mount", async () => {
  await using server = await startApiServer();
  putSpc(server, "cached");
  const pod = putPod(server, "web");
  const k = await startK8sDriver(server, { tuning: { requestTimeoutMs: 300 } });
  try {
    // Slow: the class comes from the cache, the SPCPS write times out after the files were written.
    server.pause("hang");
    await assertGrpcError(
      k.driver.client.nodePublishVolume(k.publishRequest(pod, "cached")),
      GrpcStatus.UNKNOWN,
      /could not create secretproviderclasspodstatus default\/web-default-cached: the API server did not answer within 300 ms/,
    );
    assert.deepEqual(await k.driver.mounts(), [], "a failed publish left a mount behind");
    server.resume();

    // Down: a class that is not cached cannot be read.
    await server.stop();
    await assertGrpcError(
      k.driver.client.nodePublishVolume(k.publishRequest(pod, "uncached")),
      GrpcStatus.UNKNOWN,
      /could not get secretproviderclass default\/uncached: the API server at http:\/\/127\.0\.0\.1:\d+ refused the connection/,
    );
    assert.deepEqual(await k.driver.mounts(), []);

    // Back: kubelet's retry succeeds.
    await server.restart();
    await k.driver.client.nodePublishVolume(k.publishRequest(pod, "cached"));
    await waitFor("the SPCPS", () => server.get("SecretProviderClassPodStatus", NS, "web-default-cached"));
  } finally {
    await k.close();
  }
});
