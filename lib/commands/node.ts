/** `node`: the CSI node plugin that kubelet talks to. */
import type { NodeConfig } from "../config.ts";
import { startCsiServer } from "../csi/server.ts";
import { parseEndpoint } from "../csi/endpoint.ts";
import { createLogger, type Logger } from "../log.ts";
import { PrometheusMetrics } from "../metrics.ts";
import { startMetricsServer } from "../metrics-server.ts";
import { routeGrpcLogs } from "../grpc-logging.ts";
import { startProfilingServer } from "../profiling-server.ts";
import { noswapSupported, swapIsOn } from "../mount/tmpfs.ts";
import { startProviderHealthCheck } from "../provider/health.ts";
import { SpcDirectory } from "../spc/files.ts";
import { type KubernetesParts, startKubernetes } from "../k8s/setup.ts";
import type { MountedReader } from "../k8s/secret-sync.ts";
import type { DriverMetrics } from "../metrics.ts";
import { DRIVER_VERSION } from "../version.ts";
import type { MountedVolumes, SpcSource } from "../volume/ports.ts";
import { acceptsConnections } from "../unix-socket.ts";
import { DEFAULT_MAX_RSS_BYTES, DEFAULT_STALL_SECONDS, startWatchdog } from "../watchdog.ts";
import { untilTerminated } from "./signals.ts";
import { createWriter, wireVolumes } from "./wiring.ts";

/** How long in-flight CSI calls may run on after SIGTERM before they are cut. */
const SHUTDOWN_GRACE_MS = 10_000;

/**
 * Standalone with `--spc-dir` (SecretProviderClasses from files, nothing else), else connects to the
 * cluster (--kubeconfig, $KUBECONFIG or the in-cluster account) and starts the whole Kubernetes side:
 * the informers, the SPCPS recorder and the Secret sync.
 */
async function startClusterOrStandalone(
  config: NodeConfig,
  log: Logger,
  metrics: DriverMetrics,
  reader: MountedReader,
  volumes: MountedVolumes,
): Promise<{ spcs: SpcSource; kubernetes?: KubernetesParts }> {
  if (config.spcDir) return { spcs: new SpcDirectory(config.spcDir) };
  const kubernetes = await startKubernetes({
    kubeconfig: config.kubeconfig,
    nodeId: config.nodeId,
    log,
    metrics,
    reader,
    volumes,
  });
  if (kubernetes === null) {
    throw new Error(
      "no SecretProviderClass source: pass --kubeconfig, run in-cluster, or pass --spc-dir DIR to run standalone",
    );
  }
  return { spcs: kubernetes.spcs, kubernetes };
}

/** The seed's security note: swapped-out tmpfs pages can persist secret material on disk. */
async function warnAboutSwap(log: Logger): Promise<void> {
  if (await swapIsOn() && !await noswapSupported()) {
    log.warn(
      "swap is on and this kernel cannot mount tmpfs with noswap (needs Linux 6.4+): secret pages may be swapped to disk",
    );
  }
}

/** Runs the node plugin until SIGTERM/SIGINT; resolves with the exit code. */
export async function runNode(config: NodeConfig): Promise<number> {
  const log = createLogger(config.logging);
  routeGrpcLogs(log, config.logging.verbosity);
  const socketPath = parseEndpoint(config.endpoint);
  const metrics = new PrometheusMetrics();
  // One writer for the volumes and for the Secret sync, which reads the mounted files through it.
  const writer = createWriter(config.provider, log);
  // The Secret sync reads only volumes the use case published. The use case is built after the cluster
  // parts (it needs their SPC source), so the sync asks it through this late-bound view.
  const late: { volumes?: MountedVolumes } = {};
  const published: MountedVolumes = { podUid: (path) => late.volumes?.podUid(path) };
  const { spcs, kubernetes } = await startClusterOrStandalone(config, log, metrics, writer, published);
  const metricsServer = config.metricsAddr === undefined
    ? undefined
    : startMetricsServer(config.metricsAddr, metrics.registry, () => acceptsConnections(socketPath), log);
  const profiling = config.pprofPort === undefined ? undefined : startProfilingServer(config.pprofPort, log);
  await warnAboutSwap(log);
  const { volumes, providers } = wireVolumes(config.provider, spcs, log, {
    writer,
    metrics,
    rotation: config.rotation,
    afterPublish: kubernetes?.afterPublish,
    afterUnpublish: kubernetes?.afterUnpublish,
    rotationFailed: kubernetes?.rotationFailed,
  });
  late.volumes = volumes;
  // A wedged event loop or runaway memory kills the process so that the DaemonSet restarts it
  // (armed once the configuration has been accepted: a bad one fails with one line, as before).
  const watchdog = startWatchdog({
    stallSeconds: DEFAULT_STALL_SECONDS,
    maxRssBytes: DEFAULT_MAX_RSS_BYTES,
    log,
  });
  const server = await startCsiServer({
    endpoint: config.endpoint,
    driverName: config.driverName,
    version: DRIVER_VERSION,
    nodeId: config.nodeId,
    volumes,
    log,
  });
  const health = config.healthCheck.enabled
    ? startProviderHealthCheck({
      providers,
      dirs: config.provider.dirs,
      intervalMs: config.healthCheck.intervalMs,
      metrics,
      log,
    })
    : undefined;
  log.info("driver started", {
    driver: config.driverName,
    version: DRIVER_VERSION,
    nodeId: config.nodeId,
    providerDirs: config.provider.dirs,
    rotation: config.rotation.enabled,
  });
  const signal = await untilTerminated();
  log.info("shutting down", { signal });
  watchdog.stop();
  health?.stop();
  await server.shutdown(SHUTDOWN_GRACE_MS);
  await kubernetes?.stop();
  providers.close();
  await metricsServer?.close();
  await profiling?.close();
  return 0;
}
