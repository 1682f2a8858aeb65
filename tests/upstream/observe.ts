/**
 * What the differential suite compares, made comparable: each observation of a side is a flat map of
 * `key → value` strings in which everything that is the side's own by construction (its directory, node
 * name, namespace, payload timestamps, object uids and versions) is replaced by a placeholder. Two sides
 * agree on a step when their maps are equal; every key whose values differ is one Difference.
 */
import { join } from "node:path";
import type { MountEntry } from "../../lib/mount/mountinfo.ts";

/** One way the two sides differed at one step. */
export interface Difference {
  step: string;
  /** What was compared: code, files, mount, request, spcps, secret, events, metrics, response. */
  aspect: string;
  /** The compared key within the aspect, e.g. a file's path or a metric family. */
  key: string;
  upstream: string | null;
  ours: string | null;
}

/** An observation: key → value, both already normalized. */
export type Observation = Map<string, string>;

/** Side-specific strings and their placeholders. */
export interface Placeholders {
  dir: string;
  nodeName: string;
  namespace: string;
}

/** kubelet's AtomicWriter payload directory: a timestamp and a random suffix (decimal in Go, any here). */
const TIMESTAMP_DIR = /\.\.\d{4}_\d{2}_\d{2}_\d{2}_\d{2}_\d{2}\.[0-9A-Za-z_]+/g;

/** Replaces the side's own strings (and payload timestamps) in `text`. */
export function normalize(text: string, p: Placeholders): string {
  return text
    .replaceAll(p.dir, "<dir>")
    .replaceAll(p.nodeName, "<node>")
    .replaceAll(p.namespace, "<namespace>")
    .replace(TIMESTAMP_DIR, "..<timestamp>");
}

/** Files below a mounted target: type, permission bits, link target and contents, by normalized path. */
export async function snapshotFiles(target: string, p: Placeholders): Promise<Observation> {
  const out: Observation = new Map();
  const walk = async (dir: string, rel: string) => {
    const entries: Deno.DirEntry[] = [];
    for await (const entry of Deno.readDir(dir)) entries.push(entry);
    for (const entry of entries.sort((a, b) => a.name.localeCompare(b.name))) {
      const path = join(dir, entry.name);
      const key = normalize(rel === "" ? entry.name : `${rel}/${entry.name}`, p);
      const info = await Deno.lstat(path);
      const mode = ((info.mode ?? 0) & 0o7777).toString(8).padStart(4, "0");
      if (info.isSymlink) {
        out.set(key, `symlink -> ${normalize(await Deno.readLink(path), p)}`);
      } else if (info.isDirectory) {
        out.set(key, `dir ${mode}`);
        await walk(path, rel === "" ? entry.name : `${rel}/${entry.name}`);
      } else {
        const contents = normalize(new TextDecoder().decode(await Deno.readFile(path)), p);
        out.set(key, `file ${mode} ${JSON.stringify(contents)}`);
      }
    }
  };
  await walk(target, "");
  return out;
}

/** The target's mount: file system type, source and options as the kernel reports them. */
export function snapshotMount(entry: MountEntry | undefined): Observation {
  if (!entry) return new Map([["mounted", "no"]]);
  return new Map([
    ["mounted", "yes"],
    ["fsType", entry.fsType],
    ["source", entry.source],
    ["mountOptions", [...entry.mountOptions].sort().join(",")],
    // size= and nr_inodes= depend on the machine when no size is given: keep only their names.
    [
      "superOptions",
      entry.superOptions.map((o) => /^(size|nr_inodes)=/.test(o) ? o.split("=")[0] : o).sort().join(","),
    ],
  ]);
}

/** Flattens a JSON value into `prefix.path → JSON of leaf` entries. */
export function flatten(value: unknown, prefix: string, out: Observation = new Map()): Observation {
  if (value !== null && typeof value === "object") {
    const entries = Array.isArray(value)
      ? value.map((v, i) => [String(i), v] as const)
      : Object.entries(value as Record<string, unknown>).sort(([a], [b]) => a.localeCompare(b));
    if (entries.length === 0) out.set(prefix, Array.isArray(value) ? "[]" : "{}");
    for (const [k, v] of entries) flatten(v, prefix === "" ? k : `${prefix}.${k}`, out);
    return out;
  }
  out.set(prefix, JSON.stringify(value));
  return out;
}

/** Metadata that the API server assigns; never compared. */
const SERVER_FIELDS = new Set([
  "uid",
  "resourceVersion",
  "creationTimestamp",
  "managedFields",
  "generation",
  "selfLink",
]);

/** An API object without server-assigned metadata, owner uids replaced, normalized. */
export function comparableObject(object: Record<string, unknown>, p: Placeholders): unknown {
  const metadata = { ...(object.metadata as Record<string, unknown>) };
  for (const field of SERVER_FIELDS) delete metadata[field];
  if (Array.isArray(metadata.ownerReferences)) {
    metadata.ownerReferences = metadata.ownerReferences.map((o: Record<string, unknown>) => ({
      ...o,
      uid: "<uid>",
    }));
  }
  return JSON.parse(normalize(JSON.stringify({ ...object, metadata }), p));
}

/** An Event, as far as it is the driver's: reason, type, the object it is about, and its message. */
export function comparableEvent(event: Record<string, unknown>, p: Placeholders): Record<string, unknown> {
  const involved = (event.involvedObject ?? event.regarding ?? {}) as Record<string, unknown>;
  return JSON.parse(normalize(
    JSON.stringify({
      reason: event.reason,
      type: event.type,
      object: `${involved.kind}/${involved.name}`,
      message: event.message ?? event.note,
    }),
    p,
  ));
}

/** One metric family of a Prometheus text exposition: its type and every label set of its samples. */
export interface MetricFamily {
  type: string;
  /** Sorted label names of each sample series, e.g. "error_type,os_type,provider". */
  labelSets: Set<string>;
  /** Label values other than the numeric ones, by label name. */
  labelValues: Map<string, Set<string>>;
}

/** Parses `# TYPE` lines and samples; histogram samples count for their family. */
export function parseExposition(text: string): Map<string, MetricFamily> {
  const families = new Map<string, MetricFamily>();
  const types = new Map<string, string>();
  for (const line of text.split("\n")) {
    const typeLine = /^# TYPE (\S+) (\S+)/.exec(line);
    if (typeLine) {
      types.set(typeLine[1], typeLine[2]);
      families.set(typeLine[1], { type: typeLine[2], labelSets: new Set(), labelValues: new Map() });
      continue;
    }
    if (line.startsWith("#") || line.trim() === "") continue;
    const sample = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s/.exec(line);
    if (!sample) continue;
    let name = sample[1];
    if (!families.has(name)) name = name.replace(/_(bucket|sum|count)$/, "");
    const family = families.get(name);
    if (!family) continue;
    const labels = [...(sample[2] ?? "").matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)];
    family.labelSets.add(labels.map(([, k]) => k).filter((k) => k !== "le").sort().join(","));
    for (const [, k, v] of labels) {
      if (k === "le") continue;
      if (!family.labelValues.has(k)) family.labelValues.set(k, new Set());
      family.labelValues.get(k)!.add(v);
    }
  }
  // OpenTelemetry exports an instrument only once it has a value; prom-client always prints its TYPE line.
  for (const [name, family] of families) if (family.labelSets.size === 0) families.delete(name);
  return families;
}

/** The families of upstream's exposition that are the driver's own (its OpenTelemetry scope) or target_info. */
export function driverFamilies(upstream: Map<string, MetricFamily>): Set<string> {
  const own = new Set<string>();
  for (const [name, family] of upstream) {
    const scope = family.labelValues.get("otel_scope_name");
    if (name === "target_info" || scope?.has("sigs.k8s.io/secrets-store-csi-driver")) own.add(name);
  }
  return own;
}

/** A metric family as compared: type, label sets and the values of its labels (instance labels dropped). */
export function comparableFamily(family: MetricFamily | undefined, p: Placeholders): Observation {
  if (!family) return new Map([["present", "no"]]);
  const out: Observation = new Map([["type", family.type], [
    "labelSets",
    [...family.labelSets].sort().join(" | "),
  ]]);
  for (const [label, values] of [...family.labelValues].sort(([a], [b]) => a.localeCompare(b))) {
    out.set(`values.${label}`, normalize([...values].sort().join(","), p));
  }
  return out;
}

/** The differences between two observations of one step and aspect. */
export function diff(step: string, aspect: string, upstream: Observation, ours: Observation): Difference[] {
  const keys = [...new Set([...upstream.keys(), ...ours.keys()])].sort();
  return keys.flatMap((key) => {
    const u = upstream.get(key) ?? null;
    const o = ours.get(key) ?? null;
    return u === o ? [] : [{ step, aspect, key, upstream: u, ours: o }];
  });
}
