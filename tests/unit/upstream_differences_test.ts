/**
 * The README's "Side by side with upstream" table is tests/upstream/differences.json, row for row: the
 * differential suite (tests/upstream/differential.ts) fails on any difference the file does not list, so
 * the README must say exactly what the file says.
 */
import assert from "node:assert/strict";
import { listedDifferences, README_BEGIN, README_END } from "../upstream/differences.ts";

const README = new URL("../../README.md", import.meta.url);

/** The (what, why) cells of the table rows between the markers, header and separator left out. */
function readmeRows(readme: string): [string, string][] {
  const start = readme.indexOf(README_BEGIN);
  const end = readme.indexOf(README_END);
  assert.ok(start >= 0 && end > start, "the README has no upstream-differences block");
  const rows = readme.slice(start + README_BEGIN.length, end).split("\n").filter((l) => l.startsWith("|"));
  return rows.slice(2).map((row) => {
    const cells = row.slice(1, -1).split(/(?<!\\)\|/).map((c) => c.trim().replaceAll("\\|", "|"));
    assert.equal(cells.length, 2, `not a two-column row: ${row}`);
    return [cells[0], cells[1]];
  });
}

Deno.test("the README's table of differences from upstream is tests/upstream/differences.json", async () => {
  const rows = readmeRows(await Deno.readTextFile(README));
  assert.deepEqual(rows, listedDifferences().map((l) => [l.what, l.why]));
});

Deno.test("every listed difference says what and why", () => {
  for (const listed of listedDifferences()) {
    assert.ok(listed.what.trim() !== "" && listed.why.trim() !== "", JSON.stringify(listed));
    assert.ok(listed.match.step !== undefined || listed.match.aspect !== undefined, JSON.stringify(listed));
  }
});
