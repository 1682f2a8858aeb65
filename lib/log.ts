/**
 * Structured logging in klog's shape: `I1129 17:41:45.123456  4242] "msg" key="value"` as text, or one JSON
 * object per line with `--log-format-json`. Callers pass metadata (pod, targetPath, provider, ...), never
 * secret contents: the logger has no way to know what is secret, so nothing secret may be handed to it.
 */

export type Level = "info" | "warning" | "error";
export type Fields = Record<string, unknown>;

export interface Logger {
  /** Logs at verbosity `v` (0 = always). */
  info(msg: string, fields?: Fields, v?: number): void;
  warn(msg: string, fields?: Fields): void;
  error(msg: string, fields?: Fields): void;
  /** A logger that adds `fields` to every line. */
  with(fields: Fields): Logger;
}

export interface LogOptions {
  json: boolean;
  verbosity: number;
  /** Where lines go; stderr by default (like klog). */
  sink?: (line: string) => void;
}

const encoder = new TextEncoder();
const stderrSink = (line: string) => Deno.stderr.writeSync(encoder.encode(line + "\n"));

const LEVEL_LETTER: Record<Level, string> = { info: "I", warning: "W", error: "E" };

function pad(n: number, width = 2): string {
  return String(n).padStart(width, "0");
}

function klogHeader(level: Level, now: Date): string {
  const date = `${pad(now.getUTCMonth() + 1)}${pad(now.getUTCDate())}`;
  const time = `${pad(now.getUTCHours())}:${pad(now.getUTCMinutes())}:${pad(now.getUTCSeconds())}.${
    pad(now.getUTCMilliseconds(), 3)
  }000`;
  return `${LEVEL_LETTER[level]}${date} ${time} ${String(Deno.pid).padStart(7)}]`;
}

function textValue(value: unknown): string {
  if (value instanceof Error) return JSON.stringify(value.message);
  if (typeof value === "string") return JSON.stringify(value);
  return JSON.stringify(value) ?? String(value);
}

function jsonValue(value: unknown): unknown {
  return value instanceof Error ? value.message : value;
}

/** Creates a logger; with `json` each line is `{"ts","level","msg",...fields}`. */
export function createLogger(options: LogOptions, base: Fields = {}): Logger {
  const sink = options.sink ?? stderrSink;
  const emit = (level: Level, msg: string, fields: Fields = {}) => {
    const all = { ...base, ...fields };
    const now = new Date();
    if (options.json) {
      const out: Fields = { ts: now.toISOString(), level, msg };
      for (const [k, v] of Object.entries(all)) out[k] = jsonValue(v);
      sink(JSON.stringify(out));
      return;
    }
    const kv = Object.entries(all).map(([k, v]) => ` ${k}=${textValue(v)}`).join("");
    sink(`${klogHeader(level, now)} ${JSON.stringify(msg)}${kv}`);
  };
  return {
    info: (msg, fields, v = 0) => {
      if (v <= options.verbosity) emit("info", msg, fields);
    },
    warn: (msg, fields) => emit("warning", msg, fields),
    error: (msg, fields) => emit("error", msg, fields),
    with: (fields) => createLogger(options, { ...base, ...fields }),
  };
}

/** A logger that drops everything, for tests and library use without output. */
export const silentLogger: Logger = createLogger({ json: false, verbosity: -1, sink: () => {} });
