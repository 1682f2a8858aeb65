/**
 * The chart cannot drift from manifests/: `helm template` with the default values (CRDs included) and
 * `kubectl kustomize manifests/` are compared object by object, field by field. What differs on purpose is
 * data, in drift-expected.yaml (each entry says why); any other difference fails, and so does an entry
 * that no longer differs. Before comparing, Helm's bookkeeping labels and hook objects are set aside, and
 * the driver's args are compared as the configuration the driver parses them into (flag order and flags
 * given at their default value do not matter).
 */
import assert from "node:assert/strict";
import { parse } from "yaml";
import { NODE_FLAGS, nodeConfig } from "../../lib/config.ts";
import { parseFlags } from "../../lib/flags.ts";
import { CHART, isHook, kustomize, type Obj, render } from "./helm.ts";

/** One difference: `chart` and `kustomize` are the values at `path` (left out: the field is not there). */
interface Difference {
  object: string;
  path: string;
  chart?: unknown;
  kustomize?: unknown;
}

interface ExpectedDifference extends Difference {
  why: string;
}

/** The value of a difference where an object is on one side only. */
const WHOLE = "the whole object";

/** Labels Helm's charts put on every object; manifests/ has app.kubernetes.io/name only. */
const HELM_LABELS = [
  "app.kubernetes.io/instance",
  "app.kubernetes.io/managed-by",
  "app.kubernetes.io/version",
  "helm.sh/chart",
];

function withoutLabels(labels: Obj | undefined, names: string[]): Obj | undefined {
  if (!labels) return labels;
  const left = Object.fromEntries(Object.entries(labels).filter(([k]) => !names.includes(k)));
  return Object.keys(left).length > 0 ? left : undefined;
}

/** The configuration a driver container's args parse into ($(VAR) expanded from its env). */
function driverConfig(c: Obj): Obj {
  const env = new Map<string, string>((c.env ?? []).map((e: Obj) => [e.name, e.value ?? "node-1"]));
  const args = (c.args as string[]).map((a) => a.replace(/\$\(([A-Z_]+)\)/g, (_, v) => env.get(v) ?? ""));
  const flags = args[0] === "node" ? args.slice(1) : args;
  return nodeConfig(parseFlags(flags, NODE_FLAGS).values) as unknown as Obj;
}

/** Objects keyed by kind/name (the one DaemonSet by kind: its name is the release's), normalized. */
function normalize(objects: Obj[], fromChart: boolean): Map<string, Obj> {
  const byKey = new Map<string, Obj>();
  for (const original of objects) {
    if (fromChart && isHook(original)) continue;
    const obj = structuredClone(original);
    if (fromChart) {
      const labels = withoutLabels(obj.metadata.labels, [...HELM_LABELS, "app"]);
      if (labels) obj.metadata.labels = labels;
      else delete obj.metadata.labels;
      if (obj.kind === "DaemonSet") {
        obj.spec.template.metadata.labels = withoutLabels(obj.spec.template.metadata.labels, HELM_LABELS);
      }
    }
    if (obj.kind === "DaemonSet") {
      for (const c of obj.spec.template.spec.containers) {
        if (c.name === "secrets-store") c.args = driverConfig(c);
      }
    }
    byKey.set(obj.kind === "DaemonSet" ? "DaemonSet" : `${obj.kind}/${obj.metadata.name}`, obj);
  }
  return byKey;
}

const isObject = (v: unknown): v is Obj => typeof v === "object" && v !== null && !Array.isArray(v);
/** Lists whose items all have a name are compared by name (containers, env, volumes, ports, ...). */
const namedList = (v: unknown): v is Obj[] =>
  Array.isArray(v) && v.length > 0 && v.every((x) => isObject(x) && typeof x.name === "string");

/** JSON with object keys sorted, so that equal values print the same. */
function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(",")}]`;
  if (isObject(value)) {
    return `{${
      Object.keys(value).sort().map((k) => `${JSON.stringify(k)}:${canonical(value[k])}`).join(",")
    }}`;
  }
  return JSON.stringify(value) ?? "undefined";
}

function diff(object: string, path: string, chart: unknown, kust: unknown, out: Difference[]): void {
  if (isObject(chart) && isObject(kust)) {
    for (const key of new Set([...Object.keys(chart), ...Object.keys(kust)])) {
      diff(object, path === "" ? key : `${path}.${key}`, chart[key], kust[key], out);
    }
  } else if (namedList(chart) && namedList(kust)) {
    const names = new Set([...chart.map((x) => x.name), ...kust.map((x) => x.name)]);
    for (const name of names) {
      diff(
        object,
        `${path}[${name}]`,
        chart.find((x) => x.name === name),
        kust.find((x) => x.name === name),
        out,
      );
    }
  } else if (canonical(chart) !== canonical(kust)) {
    const d: Difference = { object, path };
    if (chart !== undefined) d.chart = chart;
    if (kust !== undefined) d.kustomize = kust;
    out.push(d);
  }
}

Deno.test("drift: the chart's default render is manifests/ object by object, but for the listed differences", async () => {
  const [chart, kust] = await Promise.all([
    render(CHART, { release: "secrets-store-csi-driver", namespace: "kube-system", includeCrds: true }),
    kustomize(),
  ]);
  const mine = normalize(chart, true);
  const theirs = normalize(kust, false);
  const found: Difference[] = [];
  for (const key of new Set([...mine.keys(), ...theirs.keys()])) {
    const [a, b] = [mine.get(key), theirs.get(key)];
    if (a && b) diff(key, "", a, b, found);
    else {found.push(
        a ? { object: key, path: "", chart: WHOLE } : { object: key, path: "", kustomize: WHOLE },
      );}
  }

  const expected = (parse(await Deno.readTextFile(new URL("drift-expected.yaml", import.meta.url))) ??
    []) as ExpectedDifference[];
  for (const e of expected) assert.ok(e.why?.trim(), `drift-expected.yaml: ${e.object} ${e.path} has no why`);
  const show = (d: Difference) => canonical([d.object, d.path, d.chart, d.kustomize]);
  const listed = new Set(expected.map(show));
  const seen = new Set(found.map(show));
  assert.deepEqual(
    found.filter((d) => !listed.has(show(d))),
    [],
    "differences not in tests/helm/drift-expected.yaml (fix the chart or manifests/, or list them with a why)",
  );
  assert.deepEqual(
    expected.filter((d) => !seen.has(show(d))),
    [],
    "entries of tests/helm/drift-expected.yaml that no longer differ (remove them)",
  );
});
