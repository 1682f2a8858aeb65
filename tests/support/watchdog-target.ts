/**
 * A process for tests/hardening/watchdog_test.ts: starts the watchdog with short limits, prints `armed`
 * on stderr, then misbehaves as `--mode` says: `stall` (a microtask busy loop that grows the heap, like the
 * SETTINGS+GOAWAY wedge), `block` (a synchronous busy loop), `grow` (keeps allocating while the loop
 * turns), or `healthy` (idles for `--seconds`, then stops the watchdog and exits 0).
 *
 *   deno run -A tests/support/watchdog-target.ts --mode MODE [--stall-seconds N] [--max-rss-mib N]
 *     [--seconds N] [--json]
 */
import { parseArgs } from "node:util";
import { createLogger } from "../../lib/log.ts";
import { startWatchdog } from "../../lib/watchdog.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    mode: { type: "string" },
    "stall-seconds": { type: "string", default: "1" },
    "max-rss-mib": { type: "string", default: "1024" },
    seconds: { type: "string", default: "3" },
    json: { type: "boolean", default: false },
  },
});

const watchdog = startWatchdog({
  stallSeconds: Number(values["stall-seconds"]),
  maxRssBytes: Number(values["max-rss-mib"]) * 1024 * 1024,
  log: createLogger({ json: values.json, verbosity: 0 }),
  intervalMs: 100,
});
// A few beats before misbehaving.
await new Promise((resolve) => setTimeout(resolve, 500));
console.error("armed");

const kept: unknown[] = [];
switch (values.mode) {
  case "stall": {
    const spin = (): Promise<void> =>
      Promise.resolve().then(() => {
        kept.push({ at: Date.now() });
        return spin();
      });
    await spin();
    break;
  }
  case "block":
    for (;;) kept.length = 0;
  // falls through: never reached
  case "grow":
    for (;;) {
      kept.push(new Uint8Array(16 * 1024 * 1024).fill(1));
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  // falls through: never reached
  default:
    await new Promise((resolve) => setTimeout(resolve, Number(values.seconds) * 1000));
    watchdog.stop();
    console.error("done");
}
