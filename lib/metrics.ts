/**
 * Prometheus metrics exposed as a running upstream v1.6.0 exposes them, plus what operators asked for
 * beyond them. Labels carry provider names, error reasons and os_type only: never target paths, pod names
 * or secret data.
 *
 * Upstream records its metrics with OpenTelemetry (pkg/secrets-store/stats_reporter.go) and exports them
 * with go.opentelemetry.io/otel/exporters/prometheus v0.60.0 into controller-runtime's registry. That
 * exporter appends `_total` to counters, adds `otel_scope_name`, `otel_scope_schema_url` and
 * `otel_scope_version` to every series of the instrumentation scope, and exports `target_info` (the
 * OpenTelemetry resource); histograms get `ExponentialBucketsRange(0.1, 2, 11)` from a view in
 * pkg/metrics/prometheus_exporter.go. A scrape of a running upstream v1.6.0 shows exactly that (and
 * only series that were recorded). Our own series carry the `secrets_store_csi_` prefix, which no
 * upstream series uses, so they cannot collide.
 */
import { Counter, Gauge, Histogram, Registry } from "prom-client";
import { processCollectors } from "./process-metrics.ts";
import { DRIVER_VERSION } from "./version.ts";

const OS_TYPE = "linux";
/** Upstream's OpenTelemetry meter name; the exporter puts it on every series as otel_scope_name. */
const SCOPE = {
  otel_scope_name: "sigs.k8s.io/secrets-store-csi-driver",
  otel_scope_schema_url: "",
  otel_scope_version: "",
};
const SCOPE_LABELS = Object.keys(SCOPE);

/** An upstream series' labels: its own, os_type and the scope's, in name order as upstream prints them. */
function upstream(labels: Record<string, string>): Record<string, string> {
  return Object.fromEntries(
    Object.entries({ ...labels, os_type: OS_TYPE, ...SCOPE }).sort(([a], [b]) => a < b ? -1 : 1),
  );
}

/**
 * Prometheus' ExponentialBucketsRange(0.1, 2, 11) as Go computes it (math.Pow): V8's Math.pow differs
 * from Go's in the last bits (its last bound is 2.0000000000000018, Go's 1.9999999999999991), which would
 * change the `le` labels dashboards select on.
 */
const UPSTREAM_BUCKETS = [
  0.1,
  0.13492828476735633,
  0.18205642030260802,
  0.24564560522315804,
  0.3314454017339986,
  0.4472135954999578,
  0.6034176336545162,
  0.8141810630738084,
  1.0985605433061172,
  1.4822688982138947,
  1.9999999999999991,
];
/** Publish latency is usually milliseconds: finer buckets for the histogram upstream does not have. */
const PUBLISH_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

/**
 * Upstream's error_type values (pkg/errors). Anything else is a provider's own `error.code`, which a
 * provider can make as long and as varied as it likes: those are bounded (see ErrorTypes).
 */
export const UPSTREAM_ERROR_TYPES = [
  "FailedToEnsureMountPoint",
  "IncompatibleProviderVersion",
  "ProviderError",
  "FailedToMount",
  "SecretProviderClassNotFound",
  "FailedToLookupProviderGRPCClient",
  "GRPCProviderError",
  "FailedToRotate",
  "PodNotFound",
  "NodePublishSecretRefNotFound",
  "UnexpectedTargetPath",
  "PodVolumeNotFound",
  "FileWriteError",
] as const;

/** Longest provider error code kept as a label value. */
export const MAX_ERROR_TYPE_LENGTH = 64;
/** Distinct provider error codes kept as label values; later ones are folded. */
export const MAX_PROVIDER_ERROR_TYPES = 32;
/** Where codes beyond the bounds go: upstream's own, otherwise unused, "ProviderError". */
export const FOLDED_ERROR_TYPE = "ProviderError";

/**
 * Bounds the error_type label: upstream's values pass; a provider's code passes while it is at most
 * MAX_ERROR_TYPE_LENGTH printable ASCII characters and one of the first MAX_PROVIDER_ERROR_TYPES distinct
 * codes seen. Every other code becomes FOLDED_ERROR_TYPE, so no provider can grow /metrics without bound.
 */
export class ErrorTypes {
  readonly #known = new Set<string>(UPSTREAM_ERROR_TYPES);
  readonly #seen = new Set<string>();

  label(errorType: string): string {
    if (this.#known.has(errorType) || this.#seen.has(errorType)) return errorType;
    const acceptable = errorType.length <= MAX_ERROR_TYPE_LENGTH && /^[\x21-\x7e]+$/.test(errorType);
    if (!acceptable || this.#seen.size >= MAX_PROVIDER_ERROR_TYPES) return FOLDED_ERROR_TYPE;
    this.#seen.add(errorType);
    return errorType;
  }
}

/** What the driver reports; the VolumeManager, sync controller and health checker call these. */
export interface DriverMetrics {
  /** A NodePublishVolume that succeeded, first mount or republish. */
  nodePublish(provider: string, seconds: number): void;
  nodePublishError(provider: string, errorType: string): void;
  nodeUnpublish(): void;
  nodeUnpublishError(): void;
  /** A rotation that ran and succeeded; `changed` tells whether it wrote new content. */
  rotation(provider: string, changed: boolean, seconds: number): void;
  /**
   * A rotation that failed. Upstream answers the republish OK (the old content stays) but counts it both
   * as a failed rotation and as a failed NodePublishVolume; so does this.
   */
  rotationError(provider: string, errorType: string): void;
  syncK8sSecret(provider: string, count: number, seconds: number): void;
  syncK8sSecretError(provider: string, errorType: string): void;
  mountedVolumes(count: number): void;
  providerHealth(provider: string, healthy: boolean): void;
}

/** What upstream's endpoint (client_golang's promhttp) answers a plain scrape with. */
export const EXPOSITION_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8; escaping=underscores";

/** The driver's metrics in their own registry (not prom-client's global one). */
export class PrometheusMetrics implements DriverMetrics {
  readonly registry = new Registry();
  readonly #errorTypes = new ErrorTypes();
  readonly #publish: Counter;
  readonly #publishError: Counter;
  readonly #unpublish: Counter;
  readonly #unpublishError: Counter;
  readonly #rotation: Counter;
  readonly #rotationError: Counter;
  readonly #rotationDuration: Histogram;
  readonly #sync: Counter;
  readonly #syncDuration: Histogram;
  readonly #rotationUnchanged: Counter;
  readonly #syncError: Counter;
  readonly #publishDuration: Histogram;
  readonly #mounted: Gauge;
  readonly #providerHealth: Gauge;

  constructor() {
    const registers = [this.registry];
    // Upstream's instruments: OpenTelemetry names with the exporter's suffixes and scope labels.
    const counter = (name: string, help: string, labels: string[]) =>
      new Counter({ name: `${name}_total`, help, labelNames: [...labels, ...SCOPE_LABELS], registers });
    const histogram = (name: string, help: string) =>
      new Histogram({
        name,
        help,
        labelNames: ["os_type", ...SCOPE_LABELS],
        buckets: UPSTREAM_BUCKETS,
        registers,
      });
    this.#publish = counter("node_publish", "Total number of node publish calls", ["provider", "os_type"]);
    this.#unpublish = counter("node_unpublish", "Total number of node unpublish calls", ["os_type"]);
    this.#publishError = counter("node_publish_error", "Total number of node publish calls with error", [
      "provider",
      "error_type",
      "os_type",
    ]);
    this.#unpublishError = counter(
      "node_unpublish_error",
      "Total number of node unpublish calls with error",
      ["os_type"],
    );
    this.#sync = counter("sync_k8s_secret", "Total number of k8s secrets synced", ["provider", "os_type"]);
    this.#syncDuration = histogram(
      "k8s_secret_duration_sec",
      "Distribution of how long it took to sync k8s secret",
    );
    this.#rotation = counter("rotation_reconcile", "Total number of rotation reconciles", [
      "provider",
      "os_type",
      "rotated",
    ]);
    this.#rotationError = counter(
      "rotation_reconcile_error",
      "Total number of rotation reconciles with error",
      [
        "provider",
        "error_type",
        "os_type",
        "rotated",
      ],
    );
    this.#rotationDuration = histogram(
      "rotation_reconcile_duration_sec",
      "Distribution of how long it took to rotate secrets-store content for pods",
    );
    new Gauge({
      name: "target_info",
      help: "Target metadata",
      labelNames: ["service_name", "telemetry_sdk_language", "telemetry_sdk_name", "telemetry_sdk_version"],
      registers,
    }).set({
      // OpenTelemetry's default service name is unknown_service:<executable>; upstream's is its binary's.
      service_name: "unknown_service:secrets-store-csi",
      telemetry_sdk_language: "typescript",
      telemetry_sdk_name: "secrets-store-csi",
      telemetry_sdk_version: DRIVER_VERSION,
    }, 1);

    // Ours, beyond upstream.
    this.#rotationUnchanged = new Counter({
      name: "secrets_store_csi_rotation_unchanged_total",
      help: "Rotations that found identical content and wrote nothing",
      labelNames: ["provider", "os_type"],
      registers,
    });
    this.#syncError = new Counter({
      name: "secrets_store_csi_sync_k8s_secret_error_total",
      help: "Kubernetes Secret syncs that failed",
      labelNames: ["provider", "error_type", "os_type"],
      registers,
    });
    this.#publishDuration = new Histogram({
      name: "secrets_store_csi_node_publish_duration_seconds",
      help: "How long successful NodePublishVolume calls took, by provider",
      labelNames: ["provider", "os_type"],
      buckets: PUBLISH_BUCKETS,
      registers,
    });
    this.#mounted = new Gauge({
      name: "secrets_store_csi_mounted_volumes",
      help: "Secrets-store volumes currently mounted by this driver",
      labelNames: ["os_type"],
      registers,
    });
    this.#providerHealth = new Gauge({
      name: "secrets_store_csi_provider_healthy",
      help: "1 when the provider answered its last health check (Version), 0 when it did not",
      labelNames: ["provider", "os_type"],
      registers,
    });
    processCollectors(registers);
  }

  nodePublish(provider: string, seconds: number): void {
    this.#publish.inc(upstream({ provider }));
    this.#publishDuration.observe({ os_type: OS_TYPE, provider }, seconds);
  }
  nodePublishError(provider: string, errorType: string): void {
    this.#publishError.inc(upstream({ error_type: this.#errorTypes.label(errorType), provider }));
  }
  nodeUnpublish(): void {
    this.#unpublish.inc(upstream({}));
  }
  nodeUnpublishError(): void {
    this.#unpublishError.inc(upstream({}));
  }
  /** Upstream's `rotated` is "true" on every rotation that ran; unchanged content is our own series. */
  rotation(provider: string, changed: boolean, seconds: number): void {
    this.#rotation.inc(upstream({ provider, rotated: "true" }));
    this.#rotationDuration.observe(upstream({}), seconds);
    if (!changed) this.#rotationUnchanged.inc({ os_type: OS_TYPE, provider });
  }
  rotationError(provider: string, errorType: string): void {
    const error_type = this.#errorTypes.label(errorType);
    this.#rotationError.inc(upstream({ error_type, provider, rotated: "true" }));
    this.#publishError.inc(upstream({ error_type, provider }));
  }
  syncK8sSecret(provider: string, count: number, seconds: number): void {
    this.#sync.inc(upstream({ provider }), count);
    this.#syncDuration.observe(upstream({}), seconds);
  }
  syncK8sSecretError(provider: string, errorType: string): void {
    this.#syncError.inc({ error_type: this.#errorTypes.label(errorType), os_type: OS_TYPE, provider });
  }
  mountedVolumes(count: number): void {
    this.#mounted.set({ os_type: OS_TYPE }, count);
  }
  providerHealth(provider: string, healthy: boolean): void {
    this.#providerHealth.set({ os_type: OS_TYPE, provider }, healthy ? 1 : 0);
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
  syncK8sSecret() {},
  syncK8sSecretError() {},
  mountedVolumes() {},
  providerHealth() {},
};
