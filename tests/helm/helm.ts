/**
 * Running helm and kubectl against this repository's chart and upstream's, for the tests in tests/helm/.
 * helm comes from tools/helm/build.sh, kubectl from tools/cluster/build.sh (both cached builds); a missing
 * binary fails the test with the command that builds it.
 */
import { join } from "node:path";
import { parseAllDocuments } from "yaml";
import { findBinaries } from "../../tools/cluster/binaries.ts";

// deno-lint-ignore no-explicit-any
export type Obj = Record<string, any>;

const ROOT = new URL("../../", import.meta.url).pathname;

/** This repository's chart. */
export const CHART = join(ROOT, "manifests/helm/secrets-store-csi-driver");
/** The kustomize directory the chart must not drift from. */
export const KUSTOMIZE_DIR = join(ROOT, "manifests");
/** The module of upstream's driver whose chart ours replaces. */
export const UPSTREAM_MODULE = "sigs.k8s.io/secrets-store-csi-driver@v1.6.0";

function cacheDir(): string {
  return Deno.env.get("SSCSI_CACHE") ?? join(Deno.env.get("HOME") ?? "/root", ".cache/secrets-store-csi");
}

/** `NAME=value` from a shell file. */
function shellVariable(file: string, name: string): string {
  const match = Deno.readTextFileSync(join(ROOT, file)).match(new RegExp(`^${name}=(\\S+)$`, "m"));
  if (!match) throw new Error(`${file} does not set ${name}`);
  return match[1];
}

/** The helm binary tools/helm/build.sh builds. */
export function helmBinary(): string {
  const version = shellVariable("tools/helm/build.sh", "HELM_VERSION");
  const path = join(cacheDir(), `helm-${version}`, "helm");
  try {
    Deno.statSync(path);
  } catch {
    throw new Error(
      `${path} is missing: build it first with \`bash tools/helm/build.sh\` (cached once built)`,
    );
  }
  return path;
}

/** The kubectl binary tools/cluster/build.sh builds. */
export function kubectlBinary(): string {
  return findBinaries().kubectl;
}

/** The output of a finished command. */
export interface Output {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a command to its end. */
export async function run(
  command: string,
  args: string[],
  env: Record<string, string> = {},
): Promise<Output> {
  const out = await new Deno.Command(command, { args, env, stdin: "null" }).output();
  const text = new TextDecoder();
  return { code: out.code, stdout: text.decode(out.stdout), stderr: text.decode(out.stderr) };
}

/** Runs a command and returns its stdout; a non-zero exit throws with its stderr. */
export async function runOk(
  command: string,
  args: string[],
  env: Record<string, string> = {},
): Promise<string> {
  const out = await run(command, args, env);
  if (out.code !== 0) {
    throw new Error(`${command} ${args.join(" ")} exited ${out.code}:\n${out.stderr}${out.stdout}`);
  }
  return out.stdout;
}

/** helm's own cache, config and data directories: one temporary directory per test process. */
const helmHome = Deno.makeTempDirSync({ prefix: "sscsi-helm-home-" });
globalThis.addEventListener("unload", () => Deno.removeSync(helmHome, { recursive: true }));

/** Runs helm with its home directories in a temporary directory (plus `env`). */
export function helm(args: string[], env: Record<string, string> = {}): Promise<Output> {
  return run(helmBinary(), args, {
    HELM_CACHE_HOME: join(helmHome, "cache"),
    HELM_CONFIG_HOME: join(helmHome, "config"),
    HELM_DATA_HOME: join(helmHome, "data"),
    ...env,
  });
}

/** The directory of upstream's chart inside its Go module (downloaded into the module cache if needed). */
let upstreamChartDir: Promise<string> | undefined;
export function upstreamChart(): Promise<string> {
  upstreamChartDir ??= (async () => {
    const out = await run("go", ["mod", "download", "-json", UPSTREAM_MODULE]);
    if (out.code !== 0) {
      throw new Error(
        `\`go mod download ${UPSTREAM_MODULE}\` failed (Go and the module proxy are needed):\n${out.stdout}${out.stderr}`,
      );
    }
    return join(JSON.parse(out.stdout).Dir, "charts/secrets-store-csi-driver");
  })();
  return upstreamChartDir;
}

/** Parses a multi-document YAML stream into its non-empty objects. */
export function parseObjects(text: string, where: string): Obj[] {
  const docs = parseAllDocuments(text);
  if (!Array.isArray(docs)) throw new Error(`${where}: not YAML documents`);
  return docs.flatMap((doc) => {
    if (doc.errors.length > 0) throw new Error(`${where}: ${doc.errors.map((e) => e.message).join("; ")}`);
    const obj = doc.toJS();
    return obj === null ? [] : [obj];
  });
}

/** How to render a chart. */
export interface RenderOptions {
  release?: string;
  namespace?: string;
  /** Values as --set-json key=value pairs (so numbers, lists and maps keep their types). */
  set?: Record<string, unknown>;
  /** Value files (-f). */
  valueFiles?: string[];
  includeCrds?: boolean;
  kubeVersion?: string;
  apiVersions?: string[];
}

function templateArgs(chart: string, options: RenderOptions): string[] {
  const args = [
    "template",
    options.release ?? "secrets-store-csi-driver",
    chart,
    "--namespace",
    options.namespace ?? "kube-system",
  ];
  for (const file of options.valueFiles ?? []) args.push("-f", file);
  for (const [key, value] of Object.entries(options.set ?? {})) {
    args.push("--set-json", `${key}=${JSON.stringify(value)}`);
  }
  if (options.includeCrds) args.push("--include-crds");
  if (options.kubeVersion) args.push("--kube-version", options.kubeVersion);
  for (const v of options.apiVersions ?? []) args.push("--api-versions", v);
  return args;
}

/** `helm template` of a chart, parsed. */
export async function render(chart: string, options: RenderOptions = {}): Promise<Obj[]> {
  const out = await helm(templateArgs(chart, options));
  if (out.code !== 0) throw new Error(`helm template ${chart} failed:\n${out.stderr}`);
  return parseObjects(out.stdout, `helm template ${chart}`);
}

/** `helm template` that must fail: its error message. */
export async function renderError(chart: string, options: RenderOptions = {}): Promise<string> {
  const out = await helm(templateArgs(chart, options));
  if (out.code === 0) throw new Error(`helm template ${chart} succeeded, expected it to fail`);
  return out.stderr.trim();
}

/** `kubectl kustomize` of the manifests directory, parsed. */
export async function kustomize(): Promise<Obj[]> {
  return parseObjects(await runOk(kubectlBinary(), ["kustomize", KUSTOMIZE_DIR]), "kubectl kustomize");
}

/** Objects of `kind` (and `name`). */
export function find(objects: Obj[], kind: string, name?: string): Obj[] {
  return objects.filter((o) => o.kind === kind && (name === undefined || o.metadata?.name === name));
}

/** The one object of `kind` (and `name`). */
export function one(objects: Obj[], kind: string, name?: string): Obj {
  const found = find(objects, kind, name);
  if (found.length !== 1) {
    throw new Error(`expected one ${kind} ${name ?? ""}, found ${found.length}`);
  }
  return found[0];
}

/** Whether an object is a Helm hook (not part of the release's manifest). */
export function isHook(obj: Obj): boolean {
  return obj.metadata?.annotations?.["helm.sh/hook"] !== undefined;
}
