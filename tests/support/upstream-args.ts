/**
 * Upstream v1.6.0's command lines for the driver container, copied as data from its Go module
 * (sigs.k8s.io/secrets-store-csi-driver@v1.6.0), with the env kubelet expands them with.
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
