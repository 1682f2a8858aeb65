/**
 * Prometheus metrics (prom-client) with upstream's names and labels, plus what operators asked for beyond
 * them, and the HTTP endpoint that serves them with /healthz. Labels carry provider names, error reasons
 * and os_type only: never target paths, pod names or secret data.
 */
import { Counter, Gauge, Histogram, Registry } from "prom-client";

const OS_TYPE = "linux";
/** Upstream's histogram buckets (seconds), so dashboards built on them keep working. */
const UPSTREAM_BUCKETS = [0.1, 0.2, 0.3, 0.4, 0.5, 1, 1.5, 2, 2.5, 3, 5, 10, 15, 30];
/** Publish latency is usually milliseconds: finer buckets for the histogram upstream does not have. */
const PUBLISH_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

/** What the driver reports; the VolumeManager, sync controller and health checker call these. */
export interface DriverMetrics {
  nodePublish(provider: string, seconds: number): void;
  nodePublishError(provider: string, errorType: string): void;
  nodeUnpublish(): void;
  nodeUnpublishError(): void;
  rotation(provider: string, rotated: boolean, seconds: number): void;
  rotationError(provider: string, errorType: string, rotated: boolean, seconds: number): void;
  /** A rotation that found identical content and wrote nothing (beyond upstream). */
  rotationSkipped(provider: string): void;
  syncK8sSecret(provider: string, count: number, seconds: number): void;
  syncK8sSecretError(provider: string, errorType: string): void;
  mountedVolumes(count: number): void;
  providerHealth(provider: string, healthy: boolean): void;
}

/** The driver's metrics in their own registry (not prom-client's global one). */
export class PrometheusMetrics implements DriverMetrics {
  readonly registry = new Registry();
  readonly #publish: Counter;
  readonly #publishError: Counter;
  readonly #unpublish: Counter;
  readonly #unpublishError: Counter;
  readonly #rotation: Counter;
  readonly #rotationError: Counter;
  readonly #rotationDuration: Histogram;
  readonly #rotationSkipped: Counter;
  readonly #sync: Counter;
  readonly #syncDuration: Histogram;
  readonly #syncError: Counter;
  readonly #publishDuration: Histogram;
  readonly #mounted: Gauge;
  readonly #providerHealth: Gauge;

  constructor() {
    const registers = [this.registry];
    const counter = (name: string, help: string, labelNames: string[]) =>
      new Counter({ name, help, labelNames, registers });
    this.#publish = counter("total_node_publish", "Total number of node publish calls", [
      "provider",
      "os_type",
    ]);
    this.#publishError = counter(
      "total_node_publish_error",
      "Total number of node publish calls with error",
      [
        "provider",
        "error_type",
        "os_type",
      ],
    );
    this.#unpublish = counter("total_node_unpublish", "Total number of node unpublish calls", ["os_type"]);
    this.#unpublishError = counter(
      "total_node_unpublish_error",
      "Total number of node unpublish calls with error",
      ["os_type"],
    );
    this.#rotation = counter("total_rotation_reconcile", "Total number of rotation reconciles", [
      "provider",
      "os_type",
      "rotated",
    ]);
    this.#rotationError = counter(
      "total_rotation_reconcile_error",
      "Total number of rotation reconciles with error",
      [
        "provider",
        "error_type",
        "os_type",
        "rotated",
      ],
    );
    this.#rotationDuration = new Histogram({
      name: "rotation_reconcile_duration_sec",
      help: "Distribution of how long it took to rotate secrets-store content for pods",
      labelNames: ["os_type"],
      buckets: UPSTREAM_BUCKETS,
      registers,
    });
    this.#rotationSkipped = counter(
      "total_rotation_unchanged",
      "Total number of rotations that found identical content and wrote nothing",
      ["provider", "os_type"],
    );
    this.#sync = counter("total_sync_k8s_secret", "Total number of k8s secrets synced", [
      "provider",
      "os_type",
    ]);
    this.#syncDuration = new Histogram({
      name: "sync_k8s_secret_duration_sec",
      help: "Distribution of how long it took to sync k8s secret",
      labelNames: ["os_type"],
      buckets: UPSTREAM_BUCKETS,
      registers,
    });
    this.#syncError = counter("total_sync_k8s_secret_error", "Total number of k8s secret syncs that failed", [
      "provider",
      "error_type",
      "os_type",
    ]);
    this.#publishDuration = new Histogram({
      name: "node_publish_duration_sec",
      help: "Distribution of how long NodePublishVolume took, by provider",
      labelNames: ["provider", "os_type"],
      buckets: PUBLISH_BUCKETS,
      registers,
    });
    this.#mounted = new Gauge({
      name: "mounted_volumes",
      help: "Number of secrets-store volumes currently mounted by this driver",
      labelNames: ["os_type"],
      registers,
    });
    this.#providerHealth = new Gauge({
      name: "provider_healthy",
      help: "1 when the provider answered its last health check (Version), 0 when it did not",
      labelNames: ["provider", "os_type"],
      registers,
    });
  }

  nodePublish(provider: string, seconds: number): void {
    this.#publish.inc({ provider, os_type: OS_TYPE });
    this.#publishDuration.observe({ provider, os_type: OS_TYPE }, seconds);
  }
  nodePublishError(provider: string, errorType: string): void {
    this.#publishError.inc({ provider, error_type: errorType, os_type: OS_TYPE });
  }
  nodeUnpublish(): void {
    this.#unpublish.inc({ os_type: OS_TYPE });
  }
  nodeUnpublishError(): void {
    this.#unpublishError.inc({ os_type: OS_TYPE });
  }
  rotation(provider: string, rotated: boolean, seconds: number): void {
    this.#rotation.inc({ provider, os_type: OS_TYPE, rotated: String(rotated) });
    this.#rotationDuration.observe({ os_type: OS_TYPE }, seconds);
  }
  rotationError(provider: string, errorType: string, rotated: boolean, seconds: number): void {
    this.#rotationError.inc({ provider, error_type: errorType, os_type: OS_TYPE, rotated: String(rotated) });
    this.#rotationDuration.observe({ os_type: OS_TYPE }, seconds);
  }
  rotationSkipped(provider: string): void {
    this.#rotationSkipped.inc({ provider, os_type: OS_TYPE });
  }
  syncK8sSecret(provider: string, count: number, seconds: number): void {
    this.#sync.inc({ provider, os_type: OS_TYPE }, count);
    this.#syncDuration.observe({ os_type: OS_TYPE }, seconds);
  }
  syncK8sSecretError(provider: string, errorType: string): void {
    this.#syncError.inc({ provider, error_type: errorType, os_type: OS_TYPE });
  }
  mountedVolumes(count: number): void {
    this.#mounted.set({ os_type: OS_TYPE }, count);
  }
  providerHealth(provider: string, healthy: boolean): void {
    this.#providerHealth.set({ provider, os_type: OS_TYPE }, healthy ? 1 : 0);
  }
}

/** Metrics that go nowhere: for the one-shot CLI and tests that don't look at them. */
export const noMetrics: DriverMetrics = {
  nodePublish() {},
  nodePublishError() {},
  nodeUnpublish() {},
  nodeUnpublishError() {},
  rotation() {},
  rotationError() {},
  rotationSkipped() {},
  syncK8sSecret() {},
  syncK8sSecretError() {},
  mountedVolumes() {},
  providerHealth() {},
};
