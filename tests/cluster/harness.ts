/**
 * The driver under test against the real control plane: the in-process driver of
 * tests/integration/k8s_harness.ts, authenticated as its ServiceAccount (DIR/driver.kubeconfig, a
 * TokenRequest token), on a node name of its own so that parallel tests never see each other's objects.
 */
import type { KubernetesTuning } from "../../lib/k8s/setup.ts";
import type { RotationConfig } from "../../lib/volume/ports.ts";
import { type K8sDriver, startK8sDriver } from "../integration/k8s_harness.ts";
import type { TestCluster } from "../support/cluster.ts";

/** A real API server on a shared 2-core machine answers slower than the stand-in. */
const REAL_SERVER: KubernetesTuning = {
  requestTimeoutMs: 15_000,
  syncTimeoutMs: 30_000,
  watchTimeoutSeconds: 30,
};

/** A unique node name: the driver's SPCPS informer selects by it. */
export function uniqueNode(): string {
  return `node-${crypto.randomUUID().slice(0, 8)}`;
}

/** Starts the driver against `cluster` with its ServiceAccount's token. */
export function startClusterDriver(
  cluster: TestCluster,
  options: { nodeId?: string; tuning?: KubernetesTuning; rotation?: RotationConfig } = {},
): Promise<K8sDriver> {
  return startK8sDriver({ kubeconfigPath: cluster.driverKubeconfig }, {
    nodeId: options.nodeId ?? uniqueNode(),
    tuning: { ...REAL_SERVER, ...options.tuning },
    rotation: options.rotation,
  });
}
