/**
 * Structured logging in the two formats a running upstream v1.6.0 writes, so log pipelines built for it
 * keep parsing. Text is klog's (k8s.io/klog/v2 textlogger):
 * `I1201 20:08:40.363021   32296 publish.ts:172] "msg" key="value"` (level letter, month and day, local
 * time to the microsecond, pid padded to 7, the calling file and line, the quoted message, key=value
 * pairs with Go-quoted strings; an error line's error first, as `err`). `--log-format-json` writes what
 * upstream's logger (monis.app/mlog, zap's JSON encoder) writes, one object per line:
 * `{"level":"info","timestamp":"2026-12-01T21:54:41.031870Z","caller":"lib/x.ts:12$fn","message":"msg",
 * ...fields}`, `level` "error" with the error last as `error`, and warnings as info lines with
 * `"warning":true` first (mlog's convention; klog's own warnings reach upstream's JSON as plain info).
 *
 * Callers pass metadata (pod, targetPath, provider, ...), never secret contents: the logger has no way to
 * know what is secret, so nothing secret may be handed to it.
 */
import { UsageError } from "./flags.ts";

export type Level = "info" | "warning" | "error";
export type Fields = Record<string, unknown>;

export interface Logger {
  /** Logs at verbosity `v` (0 = always). */
  info(msg: string, fields?: Fields, v?: number): void;
  warn(msg: string, fields?: Fields): void;
  /** An error line; a field named `error` is its error (klog's `err`, mlog's `error`). */
  error(msg: string, fields?: Fields): void;
  /** A logger that adds `fields` to every line. */
  with(fields: Fields): Logger;
}

/** One `--vmodule` rule: source files whose name matches `pattern` log up to `level`. */
export interface VModuleRule {
  pattern: RegExp;
  level: number;
}

export interface LogOptions {
  json: boolean;
  verbosity: number;
  vmodule?: VModuleRule[];
  /** Where lines go; stderr by default (like klog). */
  sink?: (line: string) => void;
}

/**
 * Parses klog's `--vmodule`: comma-separated `pattern=N`, where pattern is a glob (`*`, `?`) matched
 * against the source file's name, or against its whole path when it has a `/`, both without extension.
 */
export function parseVModule(text: string): VModuleRule[] {
  if (text === "") return [];
  return text.split(",").map((part) => {
    const m = /^([^=]+)=(\d+)$/.exec(part.trim());
    if (!m) throw new UsageError(`flag --vmodule takes pattern=N pairs, not ${JSON.stringify(part)}`);
    const glob = m[1].replace(/[.+^${}()|[\]\\]/g, "\\$&").replace(/\*/g, ".*").replace(/\?/g, ".");
    return { pattern: new RegExp(m[1].includes("/") ? `(^|/)${glob}$` : `^${glob}$`), level: Number(m[2]) };
  });
}

const encoder = new TextEncoder();
const stderrSink = (line: string) => Deno.stderr.writeSync(encoder.encode(line + "\n"));

const LEVEL_LETTER: Record<Level, string> = { info: "I", warning: "W", error: "E" };

/** Where a log call was made. */
interface CallSite {
  /** The source file, relative to the repository root when inside it. */
  path: string;
  /** Its name without directories (klog's header). */
  file: string;
  line: number;
  /** The calling function ("" at module level or in an anonymous function). */
  func: string;
}

const ROOT = new URL("../", import.meta.url).href;

/** The caller of `fn` (see SITES for what it costs). */
function callSite(fn: (...args: never[]) => void): CallSite {
  const limit = Error.stackTraceLimit;
  Error.stackTraceLimit = 1;
  const holder: { stack?: string } = {};
  Error.captureStackTrace(holder, fn);
  Error.stackTraceLimit = limit;
  const m = /at (?:(\S+) \()?([^\s()]+):(\d+):\d+\)?$/.exec(holder.stack ?? "");
  if (!m) return { path: "???", file: "???", line: 1, func: "" };
  const path = m[2].startsWith(ROOT) ? m[2].slice(ROOT.length) : m[2].replace(/^file:\/\//, "");
  return { path, file: path.slice(path.lastIndexOf("/") + 1), line: Number(m[3]), func: m[1] ?? "" };
}

/**
 * Call sites by message. klog's convention, which every message here follows, is a constant message per
 * call site, so a message's first site stands for the later calls: a stack costs ~80 µs under Deno (its
 * frames are source-mapped), a lookup nothing. Messages that are not constant (grpc-js's) stop being
 * remembered once there are MAX_SITES; they pay for their stack each time.
 */
const SITES = new Map<string, CallSite>();
const MAX_SITES = 512;

function siteOf(msg: string, fn: (...args: never[]) => void): CallSite {
  const known = SITES.get(msg);
  if (known) return known;
  const site = callSite(fn);
  if (SITES.size < MAX_SITES) SITES.set(msg, site);
  return site;
}

/** `file` as vmodule matches it: without directories and extension. */
function moduleName(site: CallSite): string {
  return site.file.replace(/\.[^.]*$/, "");
}

function pad(n: number, width = 2): string {
  return String(n).padStart(width, "0");
}

/** klog's header: `Lmmdd hh:mm:ss.uuuuuu  pid file:line] ` (local time, as Go's time.Now()). */
function klogHeader(level: Level, epochMicros: number, site: CallSite): string {
  const now = new Date(Math.floor(epochMicros / 1000));
  const micros = pad(Math.floor(epochMicros % 1_000_000), 6);
  return `${LEVEL_LETTER[level]}${pad(now.getMonth() + 1)}${pad(now.getDate())} ${pad(now.getHours())}:${
    pad(now.getMinutes())
  }:${pad(now.getSeconds())}.${micros} ${String(Deno.pid).padStart(7)} ${site.file}:${site.line}] `;
}

/** What Go's strconv.Quote escapes: quotes, backslashes, control characters, separators, lone surrogates. */
// deno-lint-ignore no-control-regex -- control characters are exactly what must be escaped
const NEEDS_ESCAPE = /["\\\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]/;
const GO_ESCAPES: Record<string, string> = {
  '"': '\\"',
  "\\": "\\\\",
  "\n": "\\n",
  "\t": "\\t",
  "\r": "\\r",
};

/** Go's strconv.Quote for the characters a log value can hold. */
export function goQuote(s: string): string {
  if (!NEEDS_ESCAPE.test(s)) return `"${s}"`;
  const escaped = s.replace(
    // deno-lint-ignore no-control-regex -- as NEEDS_ESCAPE, with lone surrogates only
    /["\\\x00-\x1f\x7f-\x9f\u2028\u2029]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g,
    (ch) => {
      const c = ch.charCodeAt(0);
      return GO_ESCAPES[ch] ??
        (c < 0x80 ? `\\x${c.toString(16).padStart(2, "0")}` : `\\u${c.toString(16).padStart(4, "0")}`);
    },
  );
  return `"${escaped}"`;
}

/** A klog text value: strings quoted (multi-line ones as klog's `<` block), the rest as JSON. */
function textValue(value: unknown): string {
  const v = value instanceof Error ? value.message : value;
  if (typeof v !== "string") return JSON.stringify(v) ?? JSON.stringify(String(v));
  if (!v.includes("\n")) return goQuote(v);
  const lines = v.split("\n");
  const last = lines.pop()!;
  return `<\n${lines.map((l) => `\t${l}\n`).join("")}${last === "" ? " >" : `\t${last}\n >`}`;
}

function jsonValue(value: unknown): unknown {
  return value instanceof Error ? value.message : value;
}

/** klog text: `err` (an error line's `error` field) first, then the fields. */
function textLine(level: Level, epochMicros: number, site: CallSite, msg: string, fields: Fields): string {
  const entries = Object.entries(fields);
  const ordered = level === "error" && "error" in fields
    ? [["err", fields.error], ...entries.filter(([k]) => k !== "error")]
    : entries;
  const kv = ordered.map(([k, value]) => ` ${k}=${textValue(value)}`).join("");
  return `${klogHeader(level, epochMicros, site)}${goQuote(msg)}${kv}`;
}

/** RFC 3339 in UTC with microseconds, as mlog's zap encoder writes `timestamp` (metav1.RFC3339Micro). */
function rfc3339Micro(epochMicros: number): string {
  const iso = new Date(Math.floor(epochMicros / 1000)).toISOString(); // ...T21:54:41.031Z
  return `${iso.slice(0, 19)}.${pad(Math.floor(epochMicros % 1_000_000), 6)}Z`;
}

/** mlog's JSON: level, timestamp, caller, message, (warning), fields, and an error line's error last. */
function jsonLine(level: Level, epochMicros: number, site: CallSite, msg: string, fields: Fields): string {
  const out: Fields = {
    level: level === "error" ? "error" : "info",
    timestamp: rfc3339Micro(epochMicros),
    caller: `${site.path}:${site.line}$${site.func}`,
    message: msg,
  };
  if (level === "warning") out.warning = true;
  for (const [k, value] of Object.entries(fields)) {
    if (k !== "error" || level !== "error") out[k] = jsonValue(value);
  }
  if (level === "error" && "error" in fields) out.error = jsonValue(fields.error);
  return JSON.stringify(out);
}

/** Creates a logger; see the module comment for the two formats. */
export function createLogger(options: LogOptions, base: Fields = {}): Logger {
  const sink = options.sink ?? stderrSink;
  const vmodule = options.vmodule ?? [];
  const format = options.json ? jsonLine : textLine;
  const emit = (level: Level, msg: string, fields: Fields | undefined, site: CallSite) => {
    const epochMicros = Math.round((performance.timeOrigin + performance.now()) * 1000);
    sink(format(level, epochMicros, site, msg, fields ? { ...base, ...fields } : base));
  };
  /** Whether an info line at `v` from `site` passes -v and --vmodule (the first matching rule wins). */
  const enabled = (v: number, site: CallSite) => {
    const rule = vmodule.find((r) =>
      r.pattern.test(r.pattern.source.includes("/") ? site.path.replace(/\.[^./]*$/, "") : moduleName(site))
    );
    return v <= (rule?.level ?? options.verbosity);
  };
  const logger: Logger = {
    info(msg, fields, v = 0) {
      if (vmodule.length === 0) {
        if (v <= options.verbosity) emit("info", msg, fields, siteOf(msg, logger.info));
        return;
      }
      const site = siteOf(msg, logger.info);
      if (enabled(v, site)) emit("info", msg, fields, site);
    },
    warn: (msg, fields) => emit("warning", msg, fields, siteOf(msg, logger.warn)),
    error: (msg, fields) => emit("error", msg, fields, siteOf(msg, logger.error)),
    with: (fields) => createLogger(options, { ...base, ...fields }),
  };
  return logger;
}

/** A logger that drops everything, for tests and library use without output. */
export const silentLogger: Logger = {
  info() {},
  warn() {},
  error() {},
  with: () => silentLogger,
};
