/**
 * Flag parsing with Go's conventions on top of `node:util`'s parseArgs (jsr:@std/cli is not reachable
 * here): upstream manifests pass `-v=5` and `--enable-secret-rotation=false`, which parseArgs alone rejects.
 */
import { parseArgs } from "node:util";

/** A flag as declared by a subcommand. */
export interface FlagSpec {
  type: "string" | "boolean";
  /** Shown by --help. */
  help: string;
  default?: string | boolean;
  /** May be given more than once (string flags only). */
  multiple?: boolean;
}

export type FlagSpecs = Record<string, FlagSpec>;
export type FlagValues = Record<string, string | boolean | string[] | undefined>;

/** A bad command line: main prints the message as one line and exits with code 2. */
export class UsageError extends Error {
  override name = "UsageError";
}

/** Go's strconv.ParseBool spellings, which Go's flag package accepts for `--name=value`. */
const GO_TRUE = new Set(["1", "t", "T", "true", "TRUE", "True"]);
const GO_FALSE = new Set(["0", "f", "F", "false", "FALSE", "False"]);

/**
 * Rewrites Go-style arguments into the form parseArgs accepts: `-name` → `--name`, and for boolean flags
 * `--name=true` → `--name`, `--name=false` → dropped.
 */
function normalize(args: string[], specs: FlagSpecs): string[] {
  const out: string[] = [];
  for (const arg of args) {
    if (arg === "--" || !arg.startsWith("-") || arg === "-") {
      out.push(arg);
      continue;
    }
    const long = arg.startsWith("--") ? arg : `-${arg}`;
    const eq = long.indexOf("=");
    const name = long.slice(2, eq < 0 ? undefined : eq);
    if (specs[name]?.type === "boolean" && eq >= 0) {
      const value = long.slice(eq + 1);
      if (GO_TRUE.has(value)) out.push(`--${name}`);
      else if (!GO_FALSE.has(value)) {
        throw new UsageError(`flag --${name} takes true or false, not ${JSON.stringify(value)}`);
      }
      continue;
    }
    out.push(long);
  }
  return out;
}

/** Parses `args` against `specs`; unknown flags and stray positionals are UsageErrors. */
export function parseFlags(args: string[], specs: FlagSpecs, positionals = 0): {
  values: FlagValues;
  positionals: string[];
} {
  const options = Object.fromEntries(
    Object.entries(specs).map((
      [name, spec],
    ) => [name, { type: spec.type, multiple: spec.multiple ?? false }]),
  );
  try {
    const parsed = parseArgs({
      args: normalize(args, specs),
      options,
      allowPositionals: positionals > 0,
      strict: true,
    });
    if (parsed.positionals.length > positionals) {
      throw new UsageError(`unexpected argument ${JSON.stringify(parsed.positionals[positionals])}`);
    }
    const values: FlagValues = {};
    for (const [name, spec] of Object.entries(specs)) {
      values[name] = (parsed.values as FlagValues)[name] ?? spec.default;
    }
    return { values, positionals: parsed.positionals };
  } catch (err) {
    if (err instanceof UsageError) throw err;
    // parseArgs' messages are clear but mention internals such as "To specify a positional argument ...".
    throw new UsageError((err as Error).message.split(". ")[0]);
  }
}

/** Help text: one line per flag with its default. */
export function flagHelp(specs: FlagSpecs): string {
  return Object.entries(specs).map(([name, spec]) => {
    const def = spec.default === undefined || spec.default === "" ? "" : ` (default ${spec.default})`;
    const arg = spec.type === "string" ? " VALUE" : "";
    return `  --${name}${arg}\n      ${spec.help}${def}`;
  }).join("\n");
}

const DURATION_UNITS: Record<string, number> = {
  ns: 1e-6,
  us: 1e-3,
  "µs": 1e-3,
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
};

/**
 * Parses a Go duration such as `2m`, `30s`, `1h30m`, `500ms` (or Go's bare `0`) into milliseconds.
 * Negative durations, which Go accepts, are refused: no flag here has a use for them.
 */
export function parseDuration(flag: string, text: string): number {
  if (text === "0") return 0;
  const re = /(\d+(?:\.\d+)?|\.\d+)(ns|us|µs|ms|s|m|h)/y;
  let total = 0;
  let matched = 0;
  let m: RegExpExecArray | null;
  while ((m = re.exec(text)) !== null) {
    total += Number(m[1]) * DURATION_UNITS[m[2]];
    matched = re.lastIndex;
  }
  if (text === "" || matched !== text.length) {
    throw new UsageError(
      `flag --${flag} takes a duration such as 30s, 2m or 1h, not ${JSON.stringify(text)}`,
    );
  }
  return total;
}

const SIZE_UNITS: Record<string, number> = { "": 1, Ki: 1024, Mi: 1024 ** 2, Gi: 1024 ** 3 };

/** Parses a byte size: a plain number of bytes or a number with Ki, Mi or Gi (Kubernetes quantity style). */
export function parseSize(flag: string, text: string): number {
  const m = /^(\d+)(Ki|Mi|Gi)?$/.exec(text);
  const bytes = m ? Number(m[1]) * SIZE_UNITS[m[2] ?? ""] : NaN;
  if (!Number.isSafeInteger(bytes) || bytes <= 0) {
    throw new UsageError(
      `flag --${flag} takes a positive size such as 4194304, 512Ki or 16Mi, not ${JSON.stringify(text)}`,
    );
  }
  return bytes;
}

/** Parses a non-negative integer flag. */
export function parseInteger(flag: string, text: string): number {
  if (!/^\d+$/.test(text) || !Number.isSafeInteger(Number(text))) {
    throw new UsageError(`flag --${flag} takes a whole number, not ${JSON.stringify(text)}`);
  }
  return Number(text);
}
