/**
 * The image recipe, checked statically (no container engine runs here): a Deno build stage of the same
 * Deno version CI uses, a distroless glibc run stage holding only the compiled binary as its exec-form
 * entrypoint, no shell, no mount(8), and a build context that carries everything `deno compile` embeds.
 */
import assert from "node:assert/strict";

const ROOT = new URL("../../", import.meta.url);
const read = (path: string) => Deno.readTextFile(new URL(path, ROOT));

/** The Containerfile's instructions (continuation lines joined, comments dropped), split into stages. */
async function stages(): Promise<string[][]> {
  const lines = (await read("Containerfile")).replace(/\\\n/g, " ").split("\n").map((l) => l.trim())
    .filter((l) => l !== "" && !l.startsWith("#"));
  const result: string[][] = [];
  for (const line of lines) {
    if (/^FROM /i.test(line)) result.push([]);
    result.at(-1)!.push(line);
  }
  return result;
}

Deno.test("Containerfile: a Deno build stage that runs the compile task with CI's Deno version", async () => {
  const [build] = await stages();
  const ciDeno = /DENO_VERSION=(\S+)/.exec(await read(".ci/run"))![1];
  assert.match(build[0], new RegExp(`^FROM \\S*denoland/deno:${ciDeno.replaceAll(".", "\\.")} AS build$`));
  assert.ok(build.includes("RUN deno install --frozen"), "dependencies must come from the committed lock");
  assert.ok(build.includes("RUN deno task compile"));
  assert.ok(build.some((l) => /^ARG DENORT_BIN/.test(l)), "offline builds need DENORT_BIN");
});

Deno.test("Containerfile: the run stage is distroless glibc with only the binary, exec-form entrypoint", async () => {
  const all = await stages();
  assert.equal(all.length, 2, "one build and one run stage");
  const run = all[1];
  assert.match(run[0], /^FROM gcr\.io\/distroless\/cc-debian12(:\S+|@sha256:\S+)?$/);
  assert.deepEqual(run.filter((l) => /^(COPY|ADD) /.test(l)), [
    "COPY --from=build /src/dist/secrets-store-csi /secrets-store-csi",
  ]);
  assert.ok(!run.some((l) => /^RUN /.test(l)), "the run stage has no shell to RUN anything with");
  assert.ok(run.includes('ENTRYPOINT ["/secrets-store-csi"]'));
  const compileTask = JSON.parse(await read("deno.json")).tasks.compile as string;
  assert.match(await read(compileTask.split(" ").at(-1)!), /dist\/secrets-store-csi/);
  assert.ok(!/mount|util-linux/.test(run.join("\n")), "no mount(8) in the image");
});

/** The repository files in `entry`'s module graph, relative to the root. */
async function localModules(entry: string): Promise<string[]> {
  const info = await new Deno.Command(Deno.execPath(), {
    args: ["info", "--json", entry],
    cwd: ROOT,
    stdout: "piped",
  }).output();
  const graph = JSON.parse(new TextDecoder().decode(info.stdout)) as { modules: { specifier: string }[] };
  return graph.modules.map((m) => m.specifier).filter((s) => s.startsWith("file://"))
    .map((s) => s.slice(ROOT.href.length));
}

Deno.test(".dockerignore lets in every local module of main.ts's graph", async () => {
  const allowed = (await read(".dockerignore")).split("\n").filter((l) => l.startsWith("!")).map((l) =>
    l.slice(1)
  );
  const local = await localModules("main.ts");
  assert.ok(local.some((p) => p.endsWith(".proto")), "the protos are in the module graph");
  for (const path of local) {
    assert.ok(
      allowed.some((a) => path === a || path.startsWith(`${a}/`)),
      `${path} is not in the build context`,
    );
  }
});

Deno.test(".dockerignore lets in the bundle and compile tools' modules", async () => {
  const allowed = (await read(".dockerignore")).split("\n").filter((l) => l.startsWith("!")).map((l) =>
    l.slice(1)
  );
  const local = await localModules("tools/compile.ts");
  assert.ok(local.includes("tools/bundle.ts") && local.includes("tools/production.ts"));
  for (const path of local) assert.ok(allowed.includes(path), `${path} is not in the build context`);
  const [build] = await stages();
  for (const path of local) {
    assert.ok(build.some((l) => l.startsWith("COPY ") && l.includes(path)), `${path} is not copied`);
  }
});

Deno.test("Containerfile: the offline path brings a denort from the build context into the build stage", async () => {
  assert.ok(
    (await read(".dockerignore")).split("\n").includes("!denort"),
    "./denort is kept out of the context",
  );
  const [build] = await stages();
  const copy = build.findIndex((l) => /^COPY \S+ denor\[t\] \.\/$/.test(l));
  assert.ok(copy >= 0, "no COPY of ./denort (a wildcard, so that a context without it still builds)");
  assert.ok(copy < build.indexOf("RUN deno task compile"));
  assert.ok((await read(".gitignore")).split("\n").includes("/denort"), "a local denort is never committed");
});
