/**
 * The differences from upstream that are on purpose, as data (tests/upstream/differences.json): the
 * differential suite fails on a difference that no entry matches and on an entry that matches nothing,
 * and the README's table between the `upstream-differences` markers is this file rendered
 * (tests/unit/upstream_differences_test.ts checks it; `deno run tests/upstream/differences.ts` prints it).
 */
import type { Difference } from "./observe.ts";
import listedJson from "./differences.json" with { type: "json" };

export type { Difference } from "./observe.ts";

/** A field of a listed difference: the exact text, or `/regex/`; absent matches anything. */
type Pattern = string | undefined;

/** One entry of differences.json. */
export interface Listed {
  match: {
    step: Pattern;
    aspect: Pattern;
    key: Pattern;
    upstream?: Pattern;
    ours?: Pattern;
  };
  /** What differs, for the README table. */
  what: string;
  /** Why we differ on purpose. */
  why: string;
}

export const README_BEGIN =
  "<!-- upstream-differences:begin (generated from tests/upstream/differences.json) -->";
export const README_END = "<!-- upstream-differences:end -->";

/** Every entry of differences.json. */
export function listedDifferences(): Listed[] {
  return listedJson as Listed[];
}

function matches(pattern: Pattern, value: string | null): boolean {
  if (pattern === undefined) return true;
  if (pattern.length > 1 && pattern.startsWith("/") && pattern.endsWith("/")) {
    return new RegExp(pattern.slice(1, -1)).test(value ?? "null");
  }
  return pattern === (value ?? "null");
}

function covers(listed: Listed, d: Difference): boolean {
  const m = listed.match;
  return matches(m.step, d.step) && matches(m.aspect, d.aspect) && matches(m.key, d.key) &&
    matches(m.upstream, d.upstream) && matches(m.ours, d.ours);
}

/** Differences no entry covers, and entries that cover none of the differences. */
export function unlisted(
  differences: Difference[],
  listed: Listed[],
): { unmatched: Difference[]; stale: Listed[] } {
  const used = new Set<Listed>();
  const unmatched = differences.filter((d) => {
    const entry = listed.find((l) => covers(l, d));
    if (entry) used.add(entry);
    return entry === undefined;
  });
  return { unmatched, stale: listed.filter((l) => !used.has(l)) };
}

/** The README block: a Markdown table of every entry, between the markers. */
export function renderReadmeBlock(listed: Listed[]): string {
  const cell = (text: string) => text.replaceAll("|", "\\|").replaceAll("\n", " ");
  const rows = listed.map((l) => `| ${cell(l.what)} | ${cell(l.why)} |`);
  return [
    README_BEGIN,
    "| What differs (side by side with upstream v1.6.0) | Why |",
    "| --- | --- |",
    ...rows,
    README_END,
  ]
    .join("\n");
}

if (import.meta.main) console.log(renderReadmeBlock(listedDifferences()));
