/**
 * A last line of defence for faults nobody has found yet: a worker thread that kills the process when its
 * main event loop stops turning or its memory runs away, so that the DaemonSet restarts the driver cleanly
 * (mounted volumes stay mounted; the next NodePublishVolume finds them) instead of leaving kubelet with a
 * driver that accepts connections and never answers.
 *
 * Why a worker: a stalled event loop (a synchronous or microtask busy loop, such as the SETTINGS+GOAWAY bug
 * in lib/http2-goaway-guard.ts) never runs a timer again, so only another thread can notice it. The main
 * thread bumps a counter in shared memory every second; the worker checks it and the process's resident
 * memory every second. `Deno.exit` in a worker only ends the worker, and a stalled loop never runs a
 * SIGTERM handler, so the worker writes one log line and sends the process SIGKILL (exit status 137).
 *
 * The worker runs from a blob URL built from `watchdogWorker`'s source, so it needs no file of its own in
 * the bundle or the compiled binary.
 */

/** When the watchdog gives up on the process. */
export interface WatchdogOptions {
  /** The main loop did not turn for this long. */
  stallMs: number;
  /** The process's resident memory exceeds this. */
  maxRssBytes: number;
  /** Log lines as JSON (`--log-format-json`) instead of klog text. */
  json: boolean;
  /** How often the main loop beats and the worker checks; default 1 s. */
  intervalMs?: number;
}

/**
 * No CSI call, rotation or sync blocks the event loop for more than milliseconds; 20 s of silence is a
 * wedge (kubelet's own calls time out after 2 min, the liveness probe sooner).
 */
export const DEFAULT_STALL_MS = 20_000;

/**
 * The driver idles at ~70 MiB and holds at most a few 16 MiB payloads at once; 1 GiB is far beyond any
 * legitimate use and still below what a node without a container memory limit would suffer from.
 */
export const DEFAULT_MAX_RSS_BYTES = 1024 * 1024 * 1024;

/** A running watchdog. */
export interface Watchdog {
  /** Stops the heartbeat and the worker (at shutdown, so that a slow exit is not taken for a stall). */
  stop(): void;
}

/** What the main thread hands the worker. */
interface WorkerSetup {
  beats: SharedArrayBuffer;
  stallMs: number;
  maxRssBytes: number;
  intervalMs: number;
  json: boolean;
}

/**
 * The worker's whole program. Serialized with toString(): it may use only globals and its own locals.
 * Its log line has the driver logger's shape (lib/log.ts), error level.
 */
function watchdogWorker(): void {
  const scope = self as unknown as { onmessage: ((event: MessageEvent<WorkerSetup>) => void) | null };
  scope.onmessage = ({ data }) => {
    const beats = new Int32Array(data.beats);
    let seen = Atomics.load(beats, 0);
    let lastBeat = Date.now();
    const die = (msg: string, fields: Record<string, number>) => {
      const now = new Date();
      let line: string;
      if (data.json) {
        line = JSON.stringify({ ts: now.toISOString(), level: "error", msg, ...fields });
      } else {
        const two = (n: number) => String(n).padStart(2, "0");
        const date = `${two(now.getUTCMonth() + 1)}${two(now.getUTCDate())}`;
        const time = `${two(now.getUTCHours())}:${two(now.getUTCMinutes())}:${two(now.getUTCSeconds())}.` +
          `${String(now.getUTCMilliseconds()).padStart(3, "0")}000`;
        const kv = Object.entries(fields).map(([k, v]) => ` ${k}=${v}`).join("");
        line = `E${date} ${time} ${String(Deno.pid).padStart(7)}] ${JSON.stringify(msg)}${kv}`;
      }
      Deno.stderr.writeSync(new TextEncoder().encode(line + "\n"));
      Deno.kill(Deno.pid, "SIGKILL");
    };
    setInterval(() => {
      const now = Date.now();
      const beat = Atomics.load(beats, 0);
      if (beat !== seen) {
        seen = beat;
        lastBeat = now;
      } else if (now - lastBeat > data.stallMs) {
        die("the event loop has not turned; killing the driver so that it is restarted", {
          stalledMs: now - lastBeat,
        });
      }
      const rss = Deno.memoryUsage().rss;
      if (rss > data.maxRssBytes) {
        die("resident memory is over the ceiling; killing the driver so that it is restarted", {
          rssBytes: rss,
          maxRssBytes: data.maxRssBytes,
        });
      }
    }, data.intervalMs);
  };
}

/** Starts the watchdog thread and the main loop's heartbeat. */
export function startWatchdog(options: WatchdogOptions): Watchdog {
  const intervalMs = options.intervalMs ?? 1000;
  const beats = new SharedArrayBuffer(4);
  const counter = new Int32Array(beats);
  const source = `(${watchdogWorker.toString()})();`;
  const url = URL.createObjectURL(new Blob([source], { type: "application/javascript" }));
  const worker = new Worker(url, { type: "module" });
  const setup: WorkerSetup = {
    beats,
    stallMs: options.stallMs,
    maxRssBytes: options.maxRssBytes,
    intervalMs,
    json: options.json,
  };
  worker.postMessage(setup);
  const heartbeat = setInterval(() => Atomics.add(counter, 0, 1), intervalMs);
  // The heartbeat must not keep a finished process alive.
  Deno.unrefTimer(heartbeat);
  return {
    stop() {
      clearInterval(heartbeat);
      worker.terminate();
      URL.revokeObjectURL(url);
    },
  };
}
