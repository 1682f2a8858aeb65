/**
 * csi-sanity (github.com/kubernetes-csi/csi-test) against upstream's v1.6.0 driver and this one, side by
 * side (issue #14 item 3): v4.3.0, the version upstream pins, and v5.4.0. Both are built from the Go module
 * proxy through the wrapper modules in tools/csi-sanity/<major>/ and cached in
 * ~/.cache/secrets-store-csi/csi-sanity-<version>/. The drivers run as in the differential suite
 * (tests/upstream/sides.ts) against one real API server. Prints, per csi-sanity version, every test with
 * its outcome for each driver, and the totals. Needs root.
 *
 *   deno run -A tools/upstream/csi-sanity.ts [--out FILE]
 */
import { join } from "node:path";
import { parseArgs } from "node:util";
import { startApi } from "../../tests/upstream/api.ts";
import { type Side, startSide } from "../../tests/upstream/sides.ts";

const HERE = new URL(".", import.meta.url).pathname;
const VERSIONS = [{ major: "v4", version: "v4.3.0" }, { major: "v5", version: "v5.4.0" }];
const CACHE = Deno.env.get("SSCSI_CACHE") ??
  join(Deno.env.get("HOME") ?? "/root", ".cache/secrets-store-csi");

type Outcome = "passed" | "failed" | "skipped";

async function build(major: string, version: string): Promise<string> {
  const binary = join(CACHE, `csi-sanity-${version}`, "csi-sanity");
  if (await Deno.stat(binary).then(() => true, () => false)) return binary;
  const output = await new Deno.Command("go", {
    args: ["build", "-o", binary, `github.com/kubernetes-csi/csi-test/${major}/cmd/csi-sanity`],
    cwd: join(HERE, "../csi-sanity", major),
    env: { CGO_ENABLED: "0", GOFLAGS: "-mod=mod", PATH: `/usr/local/go/bin:${Deno.env.get("PATH")}` },
    stdout: "inherit",
    stderr: "inherit",
  }).output();
  if (!output.success) throw new Error(`building csi-sanity ${version} failed`);
  return binary;
}

/** Test name → outcome, from csi-sanity's JUnit report. */
function parseJunit(xml: string): Map<string, Outcome> {
  const out = new Map<string, Outcome>();
  for (const match of xml.matchAll(/<testcase\b[^>]*\bname="([^"]*)"[^>]*?(\/>|>([\s\S]*?)<\/testcase>)/g)) {
    const name = match[1].replaceAll("&#34;", '"').replaceAll("&amp;", "&").replaceAll("&gt;", ">")
      .replaceAll("&lt;", "<").replaceAll("&#39;", "'");
    const body = match[3] ?? "";
    out.set(name, /<failure|<error/.test(body) ? "failed" : /<skipped/.test(body) ? "skipped" : "passed");
  }
  return out;
}

async function sanity(binary: string, side: Side, tag: string): Promise<Map<string, Outcome>> {
  const dir = join(side.dir, `sanity-${tag}`);
  await Deno.mkdir(dir, { recursive: true });
  const junit = join(dir, "junit.xml");
  await new Deno.Command(binary, {
    args: [
      `-csi.endpoint=unix://${side.socket}`,
      `-csi.mountdir=${join(dir, "mount")}`,
      `-csi.stagingdir=${join(dir, "staging")}`,
      `-csi.junitfile=${junit}`,
      "-ginkgo.noColor",
    ],
    stdout: "null",
    stderr: "null",
  }).output();
  return parseJunit(await Deno.readTextFile(junit));
}

async function main(): Promise<void> {
  const { values } = parseArgs({ args: Deno.args, options: { out: { type: "string" } } });
  const binaries = [];
  for (const { major, version } of VERSIONS) binaries.push({ version, binary: await build(major, version) });
  const api = await startApi();
  const report: Record<string, unknown> = {};
  try {
    for (const { version, binary } of binaries) {
      const results: Record<string, Map<string, Outcome>> = {};
      for (const name of ["upstream", "ours"] as const) {
        const side = await startSide({
          name,
          kubeconfig: api.kubeconfig(name),
          localFiles: {},
          goProviders: false,
        });
        try {
          results[name] = await sanity(binary, side, version);
        } finally {
          await side.close();
        }
      }
      const names = [...new Set([...results.upstream.keys(), ...results.ours.keys()])].sort();
      const rows = names.map((test) => ({
        test,
        upstream: results.upstream.get(test) ?? "absent",
        ours: results.ours.get(test) ?? "absent",
      }));
      const totals = (side: "upstream" | "ours") =>
        Object.fromEntries((["passed", "failed", "skipped"] as Outcome[]).map((o) => [
          o,
          rows.filter((r) => r[side] === o).length,
        ]));
      report[version] = { totals: { upstream: totals("upstream"), ours: totals("ours") }, tests: rows };
      console.error(
        `csi-sanity ${version}: upstream ${JSON.stringify(totals("upstream"))}, ours ${
          JSON.stringify(totals("ours"))
        }`,
      );
      for (const r of rows.filter((r) => r.upstream !== r.ours)) {
        console.error(`  differs: ${r.test}: upstream ${r.upstream}, ours ${r.ours}`);
      }
    }
  } finally {
    await api.close();
  }
  const json = JSON.stringify(report, null, 2);
  if (values.out) await Deno.writeTextFile(values.out, json + "\n");
  console.log(json);
}

if (import.meta.main) await main();
