import assert from "node:assert/strict";
import { createLogger } from "../../lib/log.ts";

function capture(json: boolean, verbosity = 0) {
  const lines: string[] = [];
  return { lines, log: createLogger({ json, verbosity, sink: (l) => lines.push(l) }) };
}

Deno.test("text logs are klog-shaped: level letter, date, time, pid, quoted message, key=value", () => {
  const { lines, log } = capture(false);
  log.with({ pod: "ns/p" }).warn("provider slow", { durationMs: 12, error: new Error("boom") });
  assert.match(
    lines[0],
    /^W\d{4} \d\d:\d\d:\d\d\.\d{6} +\d+\] "provider slow" pod="ns\/p" durationMs=12 error="boom"$/,
  );
});

Deno.test("JSON logs are one object per line with ts, level, msg and the fields", () => {
  const { lines, log } = capture(true);
  log.error("failed", { provider: "vault", error: new Error("x") });
  const entry = JSON.parse(lines[0]);
  assert.equal(entry.level, "error");
  assert.equal(entry.msg, "failed");
  assert.equal(entry.provider, "vault");
  assert.equal(entry.error, "x");
  assert.ok(!Number.isNaN(Date.parse(entry.ts)));
});

Deno.test("verbosity filters info lines above -v", () => {
  const { lines, log } = capture(true, 2);
  log.info("v0");
  log.info("v2", {}, 2);
  log.info("v3", {}, 3);
  assert.deepEqual(lines.map((l) => JSON.parse(l).msg), ["v0", "v2"]);
});
