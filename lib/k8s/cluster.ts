/**
 * Wires the Kubernetes parts together once a cluster configuration was found (loaded lazily by
 * setup.ts): the client, the SecretProviderClass and SPCPS informers, the SPCPS recorder and the
 * Secret sync controller.
 */
import { KubeConfig } from "@kubernetes/client-node";
import { messageOf } from "../errors.ts";
import { DRIVER_NAME, DRIVER_VERSION } from "../version.ts";
import type { Published, RotationFailure } from "../volume/ports.ts";
import { KubeApi } from "./api.ts";
import { KUBERNETES_DEFAULTS } from "./defaults.ts";
import { EventRecorder } from "./events.ts";
import { Informer } from "./informer.ts";
import type { ClusterConfig, KubernetesOptions, KubernetesParts } from "./options.ts";
import { SecretSync } from "./secret-sync.ts";
import { ClusterSpcSource, trimSpc } from "./spc.ts";
import { NODE_LABEL, type Spcps, spcpsName, SpcpsRecorder, trimSpcps } from "./spcps.ts";

/** The Event reason of a failed rotation: upstream's error type for it (pkg/errors FailedToRotate). */
export const ROTATION_FAILED_REASON = "FailedToRotate";

/** Loads the configuration with client-node; errors name the file. */
function loadKubeConfig(config: ClusterConfig): KubeConfig {
  const kc = new KubeConfig();
  const where = config.source === "kubeconfig"
    ? `--kubeconfig ${config.path}`
    : config.source === "KUBECONFIG"
    ? `KUBECONFIG=${config.paths}`
    : "the in-cluster service account";
  try {
    if (config.source === "kubeconfig") kc.loadFromFile(config.path);
    else if (config.source === "in-cluster") kc.loadFromCluster();
    else {
      const [first, ...rest] = config.paths.split(":").filter((p) => p !== "");
      kc.loadFromFile(first);
      for (const path of rest) {
        const more = new KubeConfig();
        more.loadFromFile(path);
        kc.mergeConfig(more);
      }
    }
  } catch (err) {
    throw new Error(`cannot load the cluster configuration from ${where}: ${messageOf(err)}`);
  }
  if (!kc.getCurrentCluster()) {
    throw new Error(`the cluster configuration from ${where} has no current context with a cluster`);
  }
  return kc;
}

/** Connects to the cluster and starts the informers and the sync controller. */
export async function connectCluster(
  config: ClusterConfig,
  options: KubernetesOptions,
): Promise<KubernetesParts> {
  const tuning = { ...KUBERNETES_DEFAULTS, ...options.tuning };
  const log = options.log.with({ component: "kubernetes" });
  const api = new KubeApi(loadKubeConfig(config), {
    userAgent:
      `${DRIVER_NAME}/${DRIVER_VERSION} (${Deno.build.os}/${Deno.build.arch}) node/${options.nodeId}`,
    qps: tuning.qps,
    burst: tuning.burst,
    timeoutMs: tuning.requestTimeoutMs,
  });
  const informer = {
    api,
    log,
    watchTimeoutSeconds: tuning.watchTimeoutSeconds,
    initialBackoffMs: tuning.informerBackoffMs.initial,
    maxBackoffMs: tuning.informerBackoffMs.max,
  };
  // The handlers run only after start(), once `sync` exists.
  const spcCache = new Informer({
    ...informer,
    resource: "spcs",
    transform: trimSpc,
    onChange: (type, o) => {
      if (type === "updated") sync.enqueueClass(o.metadata.namespace!, o.metadata.name!);
    },
  });
  const spcpsCache = new Informer<Spcps>({
    ...informer,
    resource: "spcps",
    labelSelector: `${NODE_LABEL}=${options.nodeId}`,
    transform: trimSpcps,
    onChange: (type, o) => {
      if (type !== "deleted") sync.enqueue(o.metadata.namespace!, o.metadata.name!);
    },
  });
  const spcs = new ClusterSpcSource(api, spcCache);
  const recorder = new SpcpsRecorder(api, options.nodeId, spcpsCache, log);
  const events = new EventRecorder(api, options.nodeId, log);
  const sync = new SecretSync({
    api,
    spcps: spcpsCache,
    spcs,
    reader: options.reader,
    volumes: options.volumes,
    events,
    metrics: options.metrics,
    log,
    resyncMs: tuning.resyncMs,
    initialBackoffMs: tuning.syncBackoffMs.initial,
    maxBackoffMs: tuning.syncBackoffMs.max,
  });

  spcCache.start();
  spcpsCache.start();
  sync.start();
  const syncTimeoutMs = tuning.syncTimeoutMs;
  const synced = await Promise.all([
    spcCache.waitForSync(syncTimeoutMs),
    spcpsCache.waitForSync(syncTimeoutMs),
  ]);
  if (synced.includes(false)) {
    // Publishes still work: a cache miss is a direct GET. The caches fill once the API server answers.
    log.warn("the API server did not answer in time; serving without a filled cache", {
      server: api.server,
      waitedMs: syncTimeoutMs,
    });
  }
  log.info("connected to the Kubernetes API", { server: api.server, source: config.source });

  return {
    spcs,
    afterPublish: async (published: Published) => {
      await recorder.recordMounted(published);
      const { name, namespace } = published.pod;
      sync.enqueue(namespace, spcpsName(name, namespace, published.spc.name));
    },
    afterUnpublish: (targetPath: string) => recorder.recordUnmounted(targetPath),
    rotationFailed: ({ pod, spcName, message }: RotationFailure) =>
      events.warn(
        { metadata: { ...pod } },
        ROTATION_FAILED_REASON,
        `failed to rotate the secrets of SecretProviderClass ${spcName}: ${message}`,
      ),
    stop: async () => {
      await sync.stop();
      await Promise.all([spcCache.stop(), spcpsCache.stop()]);
      await api.close();
    },
  };
}
