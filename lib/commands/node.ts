/** `node`: the CSI node plugin that kubelet talks to. */
import type { NodeConfig } from "../config.ts";
import { startCsiServer } from "../csi/server.ts";
import { parseEndpoint } from "../csi/endpoint.ts";
import { createLogger, type Logger } from "../log.ts";
import { PrometheusMetrics } from "../metrics.ts";
import { startMetricsServer } from "../metrics-server.ts";
import { noswapSupported, swapIsOn } from "../mount/tmpfs.ts";
import { startProviderHealthCheck } from "../provider/health.ts";
import { SpcDirectory } from "../spc/files.ts";
import { DRIVER_VERSION } from "../version.ts";
import type { SpcSource } from "../volume/ports.ts";
import { untilTerminated } from "./signals.ts";
import { wireVolumes } from "./wiring.ts";

/** How long in-flight CSI calls may run on after SIGTERM before they are cut. */
const SHUTDOWN_GRACE_MS = 10_000;

function spcSource(config: NodeConfig): SpcSource {
  if (config.spcDir) return new SpcDirectory(config.spcDir);
  throw new Error(
    "no SecretProviderClass source: pass --spc-dir DIR to run standalone (the Kubernetes API source is not built yet)",
  );
}

/** The seed's security note: swapped-out tmpfs pages can persist secret material on disk. */
async function warnAboutSwap(log: Logger): Promise<void> {
  if (await swapIsOn() && !await noswapSupported()) {
    log.warn(
      "swap is on and this kernel cannot mount tmpfs with noswap (needs Linux 6.4+): secret pages may be swapped to disk",
    );
  }
}

/** True while something accepts connections on the CSI socket. */
async function socketServes(path: string): Promise<boolean> {
  try {
    (await Deno.connect({ transport: "unix", path })).close();
    return true;
  } catch {
    return false;
  }
}

/** Runs the node plugin until SIGTERM/SIGINT; resolves with the exit code. */
export async function runNode(config: NodeConfig): Promise<number> {
  const log = createLogger(config.logging);
  const spcs = spcSource(config);
  const socketPath = parseEndpoint(config.endpoint);
  const metrics = new PrometheusMetrics();
  const metricsServer = config.metricsAddr === ""
    ? undefined
    : startMetricsServer(config.metricsAddr, metrics.registry, () => socketServes(socketPath), log);
  await warnAboutSwap(log);
  const { volumes, providers } = wireVolumes(config.provider, spcs, log, {
    metrics,
    rotation: config.rotation,
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
  health?.stop();
  await server.shutdown(SHUTDOWN_GRACE_MS);
  providers.close();
  await metricsServer?.close();
  return 0;
}
