/**
 * A last line of defence for faults nobody has found yet: the process ends when its event loop stops
 * turning or its memory runs away, so that the DaemonSet restarts the driver cleanly (mounted volumes stay
 * mounted; the next NodePublishVolume finds them) instead of leaving kubelet with a driver that accepts
 * connections and never answers.
 *
 * A stalled loop (a synchronous or microtask busy loop, such as the SETTINGS+GOAWAY bug in
 * lib/http2-goaway-guard.ts) never runs a timer or a signal handler again, so the kernel keeps watch: every
 * second the loop re-arms alarm(2) for `stallSeconds`; when the loop stalls, the alarm goes off and SIGALRM,
 * which nothing handles, terminates the process (exit status 142 in the pod's last state). That costs
 * nothing; a worker thread watching a heartbeat would log a line first, but it costs a V8 isolate
 * (measured: idle RSS 75 → 87 MiB). Memory is checked on the same beat: over the ceiling, the driver logs
 * and exits.
 */
import type { Logger } from "./log.ts";
import { sysAlarm } from "./mount/libc.ts";

/** When the watchdog ends the process. */
export interface WatchdogOptions {
  /** The event loop did not turn for this long (whole seconds, at least 1). */
  stallSeconds: number;
  /** The process's resident memory exceeds this. */
  maxRssBytes: number;
  log: Logger;
  /** How often the loop beats; default 1 s. */
  intervalMs?: number;
}

/**
 * No CSI call, rotation or sync blocks the event loop for more than milliseconds; 20 s of silence is a
 * wedge (kubelet's own calls time out after 2 min).
 */
export const DEFAULT_STALL_SECONDS = 20;

/**
 * The driver idles at ~75 MiB and holds at most a few 16 MiB payloads at once; 1 GiB is far beyond any
 * legitimate use, for nodes that run the driver without a container memory limit.
 */
export const DEFAULT_MAX_RSS_BYTES = 1024 * 1024 * 1024;

/** A running watchdog. */
export interface Watchdog {
  /** Stops the beat and cancels the alarm (at shutdown, so that a slow exit is not taken for a stall). */
  stop(): void;
}

/** Arms the watchdog; the event loop re-arms it every `intervalMs`. */
export function startWatchdog(options: WatchdogOptions): Watchdog {
  const { stallSeconds, maxRssBytes, log } = options;
  if (!Number.isInteger(stallSeconds) || stallSeconds < 1) {
    throw new Error(`the watchdog's stall limit must be a whole number of seconds, not ${stallSeconds}`);
  }
  sysAlarm(stallSeconds);
  const beat = setInterval(() => {
    sysAlarm(stallSeconds);
    const rssBytes = Deno.memoryUsage().rss;
    if (rssBytes > maxRssBytes) {
      log.error("resident memory is over the ceiling; exiting so that the driver is restarted", {
        rssBytes,
        maxRssBytes,
      });
      Deno.exit(1);
    }
  }, options.intervalMs ?? 1000);
  // The beat must not keep a finished process alive.
  Deno.unrefTimer(beat);
  log.info("watchdog armed", { stallSeconds, maxRssBytes }, 2);
  return {
    stop() {
      clearInterval(beat);
      sysAlarm(0);
    },
  };
}
