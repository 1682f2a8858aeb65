/**
 * The provider health check (--provider-health-check): calls Version on every known provider each
 * interval, reports each one's health as a metric, and logs changes. A broken channel is replaced by the
 * client's own reconnect on the next call.
 */
import { messageOf } from "../errors.ts";
import type { Logger } from "../log.ts";
import type { DriverMetrics } from "../metrics.ts";
import { isValidProviderName } from "./discovery.ts";
import type { ProviderClient } from "./client.ts";

export interface HealthCheckOptions {
  providers: ProviderClient;
  /** The provider directories: every `<name>.sock` in them is a known provider. */
  dirs: string[];
  intervalMs: number;
  metrics: DriverMetrics;
  log: Logger;
  /** Deadline of one Version call. */
  timeoutMs?: number;
}

export interface HealthCheck {
  /** Runs one round now and resolves with each known provider's health. */
  checkNow(): Promise<Map<string, boolean>>;
  stop(): void;
}

/** Provider names of the sockets in `dirs`. */
async function socketsIn(dirs: string[]): Promise<string[]> {
  const names: string[] = [];
  for (const dir of dirs) {
    try {
      for await (const entry of Deno.readDir(dir)) {
        const name = entry.name.replace(/\.sock$/, "");
        if (name !== entry.name && isValidProviderName(name)) names.push(name);
      }
    } catch { /* a missing directory has no providers */ }
  }
  return names;
}

/** Starts checking; the first round runs right away. */
export function startProviderHealthCheck(options: HealthCheckOptions): HealthCheck {
  const known = new Set<string>();
  const health = new Map<string, boolean>();
  const timeoutMs = options.timeoutMs ?? 5_000;

  const checkOne = async (provider: string) => {
    let healthy = true;
    let error: string | undefined;
    try {
      await options.providers.version(provider, timeoutMs);
    } catch (err) {
      healthy = false;
      error = messageOf(err);
    }
    if (health.get(provider) !== healthy) {
      if (healthy) options.log.info("provider is healthy", { provider });
      else options.log.warn("provider is unhealthy", { provider, error });
    }
    health.set(provider, healthy);
    options.metrics.providerHealth(provider, healthy);
  };

  const checkNow = async () => {
    for (const name of [...await socketsIn(options.dirs), ...options.providers.connectedProviders()]) {
      known.add(name);
    }
    await Promise.all([...known].map(checkOne));
    return new Map(health);
  };

  let running: Promise<unknown> = checkNow();
  const timer = setInterval(() => {
    running = running.then(checkNow, checkNow);
  }, options.intervalMs);
  return {
    checkNow: () => (running = running.then(checkNow, checkNow)) as Promise<Map<string, boolean>>,
    stop: () => clearInterval(timer),
  };
}
