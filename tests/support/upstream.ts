/**
 * Facts of upstream v1.6.0 that tests compare against, copied as data: the command lines of its driver
 * container (from its Go module, sigs.k8s.io/secrets-store-csi-driver@v1.6.0, with the env kubelet
 * expands them with) and its metric exposition (from a scrape of the running binary).
 */

/** deploy/secrets-store-csi-driver.yaml, container `secrets-store`, `args`. */
export const DEPLOY_ARGS = [
  "--endpoint=$(CSI_ENDPOINT)",
  "--nodeid=$(KUBE_NODE_NAME)",
  "--provider-volume=/var/run/secrets-store-csi-providers",
  "--additional-provider-volume-paths=/etc/kubernetes/secrets-store-csi-providers",
  "--metrics-addr=:8095",
  "--enable-secret-rotation=false",
  "--rotation-poll-interval=2m",
  "--provider-health-check=false",
  "--provider-health-check-interval=2m",
];

/**
 * charts/secrets-store-csi-driver/templates/secrets-store-csi-driver.yaml rendered with the chart's default
 * values.yaml (logVerbosity 0, logFormatJSON false, enableSecretRotation false and rotationPollInterval
 * empty leave their args out; providerHealthCheckInterval 2m and maxCallRecvMsgSize 4194304 put theirs in),
 * as `helm template csi-secrets-store charts/secrets-store-csi-driver` (Helm v3.19.5) prints it.
 */
export const CHART_DEFAULT_ARGS = [
  "--endpoint=$(CSI_ENDPOINT)",
  "--nodeid=$(KUBE_NODE_NAME)",
  "--provider-volume=/var/run/secrets-store-csi-providers",
  "--additional-provider-volume-paths=/etc/kubernetes/secrets-store-csi-providers",
  "--metrics-addr=:8095",
  "--provider-health-check-interval=2m",
  "--max-call-recv-msg-size=4194304",
];

/**
 * The same template with every optional value set (`--set logVerbosity=5,logFormatJSON=true,
 * enableSecretRotation=true,rotationPollInterval=2m,providerHealthCheck=true`), as `helm template` prints it.
 */
export const CHART_ALL_OPTIONS_ARGS = [
  "-v=5",
  "--log-format-json=true",
  "--endpoint=$(CSI_ENDPOINT)",
  "--nodeid=$(KUBE_NODE_NAME)",
  "--provider-volume=/var/run/secrets-store-csi-providers",
  "--additional-provider-volume-paths=/etc/kubernetes/secrets-store-csi-providers",
  "--enable-secret-rotation=true",
  "--rotation-poll-interval=2m",
  "--metrics-addr=:8095",
  "--provider-health-check=true",
  "--provider-health-check-interval=2m",
  "--max-call-recv-msg-size=4194304",
];

/** Both manifests' env for the driver container. */
export const UPSTREAM_ENV = { CSI_ENDPOINT: "unix:///csi/csi.sock" };

/** The sidecars' images and args in deploy/secrets-store-csi-driver.yaml. */
export const UPSTREAM_SIDECARS = {
  "node-driver-registrar": {
    image: "registry.k8s.io/sig-storage/csi-node-driver-registrar:v2.16.0",
    args: [
      "--v=5",
      "--csi-address=/csi/csi.sock",
      "--kubelet-registration-path=/var/lib/kubelet/plugins/csi-secrets-store/csi.sock",
    ],
  },
  "liveness-probe": {
    image: "registry.k8s.io/sig-storage/livenessprobe:v2.18.0",
    args: ["--csi-address=/csi/csi.sock", "--probe-timeout=3s", "--http-endpoint=0.0.0.0:9808", "-v=2"],
  },
};

/**
 * Upstream's own series as a scrape of the running binary shows them (name → type, label names; every one
 * also has the three otel_scope_* labels, otel_scope_name="sigs.k8s.io/secrets-store-csi-driver").
 * sync_k8s_secret and k8s_secret_duration_sec are defined by upstream's stats reporter with these labels
 * but never recorded by its code; we record them.
 */
export const UPSTREAM_SERIES: Record<string, { type: string; labels: string[] }> = {
  node_publish_total: { type: "counter", labels: ["os_type", "provider"] },
  node_publish_error_total: { type: "counter", labels: ["error_type", "os_type", "provider"] },
  node_unpublish_total: { type: "counter", labels: ["os_type"] },
  node_unpublish_error_total: { type: "counter", labels: ["os_type"] },
  rotation_reconcile_total: { type: "counter", labels: ["os_type", "provider", "rotated"] },
  rotation_reconcile_error_total: {
    type: "counter",
    labels: ["error_type", "os_type", "provider", "rotated"],
  },
  rotation_reconcile_duration_sec: { type: "histogram", labels: ["os_type"] },
  sync_k8s_secret_total: { type: "counter", labels: ["os_type", "provider"] },
  k8s_secret_duration_sec: { type: "histogram", labels: ["os_type"] },
};

/** The scope labels upstream's OpenTelemetry exporter adds to each of those series. */
export const UPSTREAM_SCOPE_LABELS = ["otel_scope_name", "otel_scope_schema_url", "otel_scope_version"];

/** `le` of upstream's histogram buckets, ExponentialBucketsRange(0.1, 2, 11), as the scrape prints them. */
export const UPSTREAM_LE = [
  "0.1",
  "0.13492828476735633",
  "0.18205642030260802",
  "0.24564560522315804",
  "0.3314454017339986",
  "0.4472135954999578",
  "0.6034176336545162",
  "0.8141810630738084",
  "1.0985605433061172",
  "1.4822688982138947",
  "1.9999999999999991",
  "+Inf",
];

/** Upstream's process metrics (client_golang's process collector) that the driver exposes too. */
export const UPSTREAM_PROCESS_SERIES = {
  process_cpu_seconds_total: "counter",
  process_resident_memory_bytes: "gauge",
  process_virtual_memory_bytes: "gauge",
  process_open_fds: "gauge",
  process_max_fds: "gauge",
  process_start_time_seconds: "gauge",
};
