/**
 * Both log formats, checked strictly against what a running upstream v1.6.0 writes: klog's text header
 * and mlog's JSON (zap) schema. The same checks pass on lines copied from upstream's own stderr, so they
 * describe upstream's format rather than ours.
 */
import assert from "node:assert/strict";
import { createLogger, goQuote, parseVModule } from "../../lib/log.ts";

function capture(json: boolean, verbosity = 0, vmodule = "") {
  const lines: string[] = [];
  const log = createLogger({ json, verbosity, vmodule: parseVModule(vmodule), sink: (l) => lines.push(l) });
  return { lines, log };
}

/** Lines of upstream v1.6.0's stderr (--log-format-json off, then on). */
const UPSTREAM_TEXT = [
  'I1201 21:54:01.817147    9968 exporter.go:35] "initializing metrics backend" backend="prometheus"',
  'E1201 21:54:51.962821   11767 main.go:162] "failed to start manager" err="failed to determine if *v1.SecretProviderClassPodStatus is namespaced"',
];
const UPSTREAM_JSON = [
  '{"level":"info","timestamp":"2026-12-01T21:54:41.031870Z","caller":"/tmp/dropin-up/src/pkg/metrics/exporter.go:35$metrics.InitMetricsExporter","message":"initializing metrics backend","backend":"prometheus"}',
  '{"level":"error","timestamp":"2026-12-01T21:54:51.879347Z","caller":"/tmp/dropin-up/src/cmd/secrets-store-csi-driver/main.go:162$main.mainErr","message":"failed to start manager","error":"failed to determine if *v1.Secret is namespaced"}',
];

/**
 * klog's header, position for position (k8s.io/klog/v2 internal/buffer FormatHeader): severity letter,
 * mmdd, hh:mm:ss.uuuuuu, the pid right-aligned in 7 columns, file:line, "] ", then the quoted message and
 * key=value pairs.
 */
const KLOG_LINE =
  /^(?<level>[IWEF])(?<month>0[1-9]|1[0-2])(?<day>0[1-9]|[12]\d|3[01]) (?:[01]\d|2[0-3]):[0-5]\d:[0-5]\d\.\d{6} (?<pid>[ \d]{7}) (?<file>[^ :\]]+):(?<line>[1-9]\d*)\] (?<msg>"(?:[^"\\]|\\.)*")(?<kv>(?: [a-zA-Z][\w.-]*=(?:"(?:[^"\\]|\\.)*"|[^ "]\S*))*)$/;

/** Vector's parse_klog pattern, the parser the issue names. */
const VECTOR_KLOG =
  /^\s*(?<level>\w)(?<timestamp>\d{4} \d{2}:\d{2}:\d{2}\.\d{6})\s+(?<id>\d+)\s+(?<file>.+):(?<line>\d+)\]\s?(?<message>.*)$/;

function assertKlog(line: string): RegExpExecArray["groups"] {
  const m = KLOG_LINE.exec(line);
  assert.ok(m, `not a klog line: ${line}`);
  assert.ok(VECTOR_KLOG.test(line), `parse_klog would reject: ${line}`);
  assert.equal(m.groups!.pid.trim().length > 0 && m.groups!.pid.length, 7);
  return m.groups;
}

/** mlog's zap JSON encoder: these keys first, in this order, then the fields; errors last as `error`. */
function assertMlogJson(line: string): Record<string, unknown> {
  assert.ok(!line.includes("\n"));
  const entry = JSON.parse(line);
  const keys = Object.keys(entry);
  assert.deepEqual(keys.slice(0, 4), ["level", "timestamp", "caller", "message"], line);
  assert.ok(["info", "error"].includes(entry.level), line);
  assert.match(
    entry.timestamp,
    /^\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])T([01]\d|2[0-3]):[0-5]\d:[0-5]\d\.\d{6}Z$/,
  );
  assert.match(entry.caller, /^[^:$]+\.(go|ts):[1-9]\d*\$[^\s"]*$/, line);
  assert.equal(typeof entry.message, "string");
  if (entry.level === "error" && "error" in entry) assert.equal(keys.at(-1), "error", line);
  return entry;
}

Deno.test("the strict checks accept upstream's own lines", () => {
  for (const line of UPSTREAM_TEXT) assertKlog(line);
  for (const line of UPSTREAM_JSON) assertMlogJson(line);
});

Deno.test("text logs are klog lines: header with this file and line, Go-quoted message and values", () => {
  const { lines, log } = capture(false);
  log.with({ pod: "ns/p" }).warn("provider slow", { durationMs: 12, error: new Error("boom") });
  const line = new Error().stack!.match(/log_test\.ts:(\d+)/)![1];
  log.error("publish failed", { provider: "vault", error: new Error('no "vault.sock"') });
  log.info("odd value", { path: "a\tb\u0001", n: 1.5, ok: true, list: ["x"] });
  const [warn, error, info] = lines.map(assertKlog);
  assert.equal(warn!.level, "W");
  assert.equal(warn!.file, "log_test.ts");
  assert.equal(Number(warn!.line), Number(line) - 1);
  assert.equal(Number(warn!.pid), Deno.pid);
  assert.equal(warn!.kv, ' pod="ns/p" durationMs=12 error="boom"');
  assert.equal(error!.level, "E");
  assert.equal(error!.kv, ' err="no \\"vault.sock\\"" provider="vault"', "klog's ErrorS puts err first");
  assert.equal(info!.kv, ' path="a\\tb\\x01" n=1.5 ok=true list=["x"]');
  const now = new Date();
  assert.equal(warn!.month, String(now.getMonth() + 1).padStart(2, "0"));
});

Deno.test("a multi-line value is klog's indented block", () => {
  const { lines, log } = capture(false);
  log.info("provider said", { output: "line 1\nline 2" });
  assert.match(lines[0], /\] "provider said" output=<\n\tline 1\n\tline 2\n >$/);
});

Deno.test("Go's strconv.Quote for messages and values", () => {
  assert.equal(goQuote('a"b\\c'), '"a\\"b\\\\c"');
  assert.equal(goQuote("\x7f\u0085é"), '"\\x7f\\u0085é"');
  assert.equal(goQuote("line\nnext\r"), '"line\\nnext\\r"');
});

Deno.test("JSON logs are mlog's schema: level, timestamp, caller, message, fields, error last", () => {
  const { lines, log } = capture(true);
  log.info("node publish volume complete", { targetPath: "/t", durationMs: 3 });
  log.error("failed", { error: new Error("x"), provider: "vault" });
  log.warn("swap is on", { noswap: false });
  const [info, error, warn] = lines.map(assertMlogJson);
  assert.deepEqual(Object.keys(info).slice(4), ["targetPath", "durationMs"]);
  assert.match(info.caller as string, /^tests\/unit\/log_test\.ts:\d+\$/);
  assert.deepEqual(
    { level: error.level, message: error.message, provider: error.provider, error: error.error },
    { level: "error", message: "failed", provider: "vault", error: "x" },
  );
  // mlog's Warning: an info line with "warning": true first.
  assert.deepEqual(Object.keys(warn).slice(4), ["warning", "noswap"]);
  assert.equal(warn.level, "info");
  const ms = Date.parse(info.timestamp as string);
  assert.ok(Math.abs(ms - Date.now()) < 60_000);
});

Deno.test("verbosity filters info lines above -v", () => {
  const { lines, log } = capture(true, 2);
  log.info("v0");
  log.info("v2", {}, 2);
  log.info("v3", {}, 3);
  assert.deepEqual(lines.map((l) => JSON.parse(l).message), ["v0", "v2"]);
});

Deno.test("--vmodule raises or lowers verbosity for matching source files, first rule wins", () => {
  const { lines, log } = capture(true, 0, "log_te?t=4,other=9");
  log.info("v4", {}, 4);
  log.info("v5", {}, 5);
  assert.deepEqual(lines.map((l) => JSON.parse(l).message), ["v4"]);
  const quiet = capture(true, 5, "log_*=0");
  quiet.log.info("v1", {}, 1);
  quiet.log.info("v0");
  assert.deepEqual(quiet.lines.map((l) => JSON.parse(l).message), ["v0"]);
  const byPath = capture(true, 0, "unit/log_test=3");
  byPath.log.info("v3", {}, 3);
  assert.equal(byPath.lines.length, 1, "a pattern with / matches the file's path");
});
