/**
 * The watchdog (lib/watchdog.ts) ends a process whose event loop stopped turning (SIGALRM) or whose memory
 * ran away (a log line, exit 1), and leaves a healthy one alone. Each case runs
 * tests/support/watchdog-target.ts as a child process with a 1 s stall limit.
 */
import assert from "node:assert/strict";
import { spawnDeno } from "../support/hardening-node.ts";

const TARGET = new URL("../support/watchdog-target.ts", import.meta.url).pathname;

async function run(args: string[]): Promise<{ status: Deno.CommandStatus; lines: string[]; ms: number }> {
  const child = spawnDeno(TARGET, args);
  await child.waitForLine(/^armed$/);
  const started = performance.now();
  // A watchdog that does not fire leaves the child spinning: kill it after 20 s.
  const timer = setTimeout(() => child.stop("SIGKILL"), 20_000);
  const status = await child.exited;
  clearTimeout(timer);
  return { status, lines: child.lines, ms: performance.now() - started };
}

for (const mode of ["stall", "block"]) {
  Deno.test(`a ${mode === "stall" ? "microtask" : "synchronous"} busy loop ends the process`, async () => {
    const { status, lines, ms } = await run(["--mode", mode, "--stall-seconds", "1"]);
    assert.equal(status.signal, "SIGALRM", lines.join("\n"));
    assert.ok(ms < 5000, `ended after ${Math.round(ms)} ms`);
  });
}

Deno.test("memory over the ceiling ends the process with a log line", async () => {
  const { status, lines } = await run(["--mode", "grow", "--max-rss-mib", "300", "--json"]);
  assert.equal(status.code, 1, lines.join("\n"));
  const line = JSON.parse(lines.find((l) => l.includes("resident memory")) ?? "{}");
  assert.equal(line.level, "error");
  assert.ok(line.rssBytes > 300 * 1024 * 1024, JSON.stringify(line));
  assert.equal(line.maxRssBytes, 300 * 1024 * 1024);
});

Deno.test("a healthy process is left alone and exits on its own once the watchdog stops", async () => {
  const { status, lines } = await run(["--mode", "healthy", "--seconds", "3", "--stall-seconds", "1"]);
  assert.equal(status.code, 0, lines.join("\n"));
  assert.deepEqual(lines, ["armed", "done"]);
});
