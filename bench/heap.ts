/** Summarizes V8 heap snapshots: bytes per node type, the largest object kinds, and what grew between two. */

/** Where a heap's bytes are, in MiB. */
export interface HeapSummary {
  total_mib: number;
  by_type_mib: Record<string, number>;
  /** Largest constructor names / native kinds by self size. */
  top_mib: { name: string; mib: number; count: number }[];
}

/** What changed between two snapshots of one process, in MiB and object counts. */
export interface HeapDiff {
  before_mib: number;
  after_mib: number;
  growth_mib: number;
  /** The kinds that grew most by self size. */
  top_growth: { name: string; mib: number; count: number }[];
}

interface Snapshot {
  snapshot: { meta: { node_fields: string[]; node_types: [string[], ...unknown[]] } };
  nodes: number[];
  strings: string[];
}

interface Tally {
  total: number;
  byType: Map<string, number>;
  byName: Map<string, { bytes: number; count: number }>;
}

const round = (bytes: number) => Number((bytes / (1024 * 1024)).toFixed(2));

/** Reads a .heapsnapshot file (JSON) and sums self sizes by type and by name. */
async function tally(path: string): Promise<Tally> {
  const snap = JSON.parse(await Deno.readTextFile(path)) as Snapshot;
  const fields = snap.snapshot.meta.node_fields;
  const types = snap.snapshot.meta.node_types[0];
  const width = fields.length;
  const [typeAt, nameAt, sizeAt] = ["type", "name", "self_size"].map((f) => fields.indexOf(f));
  const byType = new Map<string, number>();
  const byName = new Map<string, { bytes: number; count: number }>();
  let total = 0;
  for (let i = 0; i < snap.nodes.length; i += width) {
    const type = types[snap.nodes[i + typeAt]];
    const size = snap.nodes[i + sizeAt];
    total += size;
    byType.set(type, (byType.get(type) ?? 0) + size);
    // Strings are named by their contents (often module source): group them by type only.
    const name = type === "object" || type === "native" || type === "code" || type === "hidden"
      ? `${type}: ${snap.strings[snap.nodes[i + nameAt]].slice(0, 60)}`
      : type;
    const entry = byName.get(name) ?? { bytes: 0, count: 0 };
    entry.bytes += size;
    entry.count++;
    byName.set(name, entry);
  }
  return { total, byType, byName };
}

/** Bytes per type and the `top` largest kinds of one snapshot. */
export async function summarizeHeapSnapshot(path: string, top = 12): Promise<HeapSummary> {
  const t = await tally(path);
  return {
    total_mib: round(t.total),
    by_type_mib: Object.fromEntries([...t.byType].sort((a, b) => b[1] - a[1]).map(([k, b]) => [k, round(b)])),
    top_mib: [...t.byName].sort((a, b) => b[1].bytes - a[1].bytes).slice(0, top).map(([name, e]) => ({
      name,
      mib: round(e.bytes),
      count: e.count,
    })),
  };
}

/** What grew from snapshot `before` to `after` (same process), the `top` kinds by growth. */
export async function diffHeapSnapshots(before: string, after: string, top = 10): Promise<HeapDiff> {
  const a = await tally(before);
  const b = await tally(after);
  const growth = [...b.byName].map(([name, e]) => {
    const old = a.byName.get(name) ?? { bytes: 0, count: 0 };
    return { name, bytes: e.bytes - old.bytes, count: e.count - old.count };
  });
  return {
    before_mib: round(a.total),
    after_mib: round(b.total),
    growth_mib: round(b.total - a.total),
    top_growth: growth.sort((x, y) => y.bytes - x.bytes).slice(0, top).map((g) => ({
      name: g.name,
      mib: round(g.bytes),
      count: g.count,
    })),
  };
}
