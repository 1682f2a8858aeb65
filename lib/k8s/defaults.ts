/**
 * Every tuning default of lib/k8s, in one table: cluster.ts fills unset knobs from it, and the modules
 * that can be built alone (the client, the informer) fall back to the same values. It imports nothing, so
 * any module can use it. The values: controller-runtime's rate limit, client-go's watch timeout, upstream's
 * 5 min resync.
 */
export const KUBERNETES_DEFAULTS: {
  qps: number;
  burst: number;
  requestTimeoutMs: number;
  syncTimeoutMs: number;
  watchTimeoutSeconds: number;
  informerBackoffMs: { initial: number; max: number };
  resyncMs: number;
  syncBackoffMs: { initial: number; max: number };
} = {
  qps: 20,
  burst: 30,
  requestTimeoutMs: 10_000,
  syncTimeoutMs: 10_000,
  watchTimeoutSeconds: 300,
  informerBackoffMs: { initial: 200, max: 10_000 },
  resyncMs: 5 * 60_000,
  syncBackoffMs: { initial: 1000, max: 5 * 60_000 },
};
