/**
 * Shared by the Kubernetes tests (tests/integration/k8s_*_test.ts against the API-server stand-in,
 * tests/cluster/ against the real control plane): the in-process driver (tests/support/driver.ts) wired
 * to lib/k8s through startKubernetes, exactly as `node` wires it, plus metrics that remember the sync
 * calls and helpers to put pods and classes into the stand-in.
 */
import assert from "node:assert/strict";
import type { NodePublishVolumeRequest } from "../../lib/csi/node.ts";
import type { GrpcStatus } from "../../lib/errors.ts";
import { createLogger, silentLogger } from "../../lib/log.ts";
import { type KubernetesParts, type KubernetesTuning, startKubernetes } from "../../lib/k8s/setup.ts";
import type { MountedReader } from "../../lib/k8s/secret-sync.ts";
import type { MountedVolumes, RotationConfig } from "../../lib/volume/ports.ts";
import { type ApiServer, type KubeObject, SECRETS_STORE_GROUP } from "../support/apiserver.ts";
import { startTestDriver, type TestDriver } from "../support/driver.ts";
import { SyncMetrics } from "../support/kube-twins.ts";

export const NS = "default";
export const NODE_LABEL = "internal.secrets-store.csi.k8s.io/node-name";

/**
 * Fast test tuning: short backoffs, a generous rate limit, and watches the server ends every 2 s. The
 * short watch timeout also bounds stop(): a watch re-opened on a kept-alive connection while the
 * stand-in shuts down is not among the watches stop() ends, so shutdown waits for its timeout.
 */
export const FAST: KubernetesTuning = {
  qps: 500,
  burst: 500,
  requestTimeoutMs: 2_000,
  syncTimeoutMs: 5_000,
  watchTimeoutSeconds: 2,
  informerBackoffMs: { initial: 20, max: 200 },
  resyncMs: 60_000,
  syncBackoffMs: { initial: 50, max: 500 },
};

/** A driver connected to the stand-in or a real API server. */
export interface K8sDriver {
  driver: TestDriver;
  kubernetes: KubernetesParts;
  metrics: SyncMetrics;
  nodeId: string;
  /** A kubelet-shaped publish request for a pod (put into the stand-in with {@link putPod}, or a real one). */
  publishRequest(pod: KubeObject, spc: string, secrets?: Record<string, string>): NodePublishVolumeRequest;
  close(): Promise<void>;
}

/**
 * Starts a driver on `nodeId` that talks to `server` through a kubeconfig file: the stand-in's, or an
 * existing file (a real cluster's driver.kubeconfig, the driver's ServiceAccount token).
 */
export async function startK8sDriver(
  server: ApiServer | { kubeconfigPath: string },
  options: { nodeId?: string; tuning?: KubernetesTuning; rotation?: RotationConfig; now?: () => number } = {},
): Promise<K8sDriver> {
  const nodeId = options.nodeId ?? "node-1";
  const standIn = !("kubeconfigPath" in server);
  const kubeconfig = standIn
    ? await Deno.makeTempFile({ prefix: "sscsi-kubeconfig-" })
    : server.kubeconfigPath;
  if (standIn) await Deno.writeTextFile(kubeconfig, server.kubeconfig());
  const metrics = new SyncMetrics();
  // Both are the driver's, built after the Kubernetes parts (as in `node`).
  const late: { reader?: MountedReader; volumes?: MountedVolumes } = {};
  const kubernetes = await startKubernetes({
    kubeconfig,
    nodeId,
    // K8S_TEST_LOG=1 shows the driver's log when a test needs debugging.
    log: Deno.env.get("K8S_TEST_LOG") ? createLogger({ json: false, verbosity: 4 }) : silentLogger,
    metrics,
    reader: { read: (dir) => late.reader!.read(dir) },
    volumes: { podUid: (path) => late.volumes!.podUid(path) },
    tuning: { ...FAST, ...options.tuning },
  });
  if (kubernetes === null) throw new Error("startKubernetes found no configuration");
  const driver = await startTestDriver({
    nodeId,
    metrics,
    rotation: options.rotation,
    now: options.now,
    spcs: kubernetes.spcs,
    afterPublish: kubernetes.afterPublish,
    afterUnpublish: kubernetes.afterUnpublish,
    rotationFailed: kubernetes.rotationFailed,
  });
  late.reader = driver.wired.writer;
  late.volumes = driver.wired.volumes;
  const publishRequest = (pod: KubeObject, spc: string, secrets: Record<string, string> = {}) => {
    const name = pod.metadata.name!;
    const request = driver.publishRequest(name, spc);
    return {
      ...request,
      volume_context: {
        ...request.volume_context,
        "csi.storage.k8s.io/pod.namespace": pod.metadata.namespace ?? NS,
        "csi.storage.k8s.io/pod.uid": pod.metadata.uid!,
      },
      secrets,
    } as NodePublishVolumeRequest;
  };
  const close = async () => {
    await driver.close();
    await kubernetes.stop();
    if (standIn) await Deno.remove(kubeconfig);
  };
  return { driver, kubernetes, metrics, nodeId, publishRequest, close };
}

/** Puts a running pod into the stand-in; returns it with its uid. */
export function putPod(
  server: ApiServer,
  name: string,
  ownerReferences?: KubeObject["metadata"]["ownerReferences"],
) {
  return server.put({
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name, namespace: NS, ...(ownerReferences ? { ownerReferences } : {}) },
    spec: { nodeName: "node-1" },
    status: { phase: "Running" },
  });
}

/** Puts a v1 SecretProviderClass for the test provider into the stand-in. */
export function putSpc(
  server: ApiServer,
  name: string,
  spec: { parameters?: Record<string, string>; secretObjects?: unknown[]; provider?: string } = {},
  version = "v1",
): KubeObject {
  return server.put({
    apiVersion: `${SECRETS_STORE_GROUP}/${version}`,
    kind: "SecretProviderClass",
    metadata: { name, namespace: NS },
    spec: { provider: "test", parameters: { a: "b" }, ...spec },
  });
}

/** Polls until `probe` returns something truthy (bounded, so a broken driver fails instead of hanging). */
export async function waitFor<T>(what: string, probe: () => T | undefined | null | false): Promise<T> {
  for (let i = 0; i < 1500; i++) {
    const value = probe();
    if (value) return value;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  throw new Error(`timed out waiting for ${what}`);
}

/** Asserts that a CSI call fails with `code` and a message matching `pattern`. */
export async function assertGrpcError(
  call: Promise<unknown>,
  code: GrpcStatus,
  pattern: RegExp,
): Promise<void> {
  await assert.rejects(call, (err: { code: number; details: string }) => {
    assert.equal(err.code, code, err.details);
    assert.match(err.details, pattern);
    return true;
  });
}
