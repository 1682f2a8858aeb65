/** Summarizes a V8 heap snapshot: bytes per node type and the largest object kinds. */

/** Where a heap's bytes are, in MiB. */
export interface HeapSummary {
  total_mib: number;
  by_type_mib: Record<string, number>;
  /** Largest constructor names / native kinds by self size. */
  top_mib: { name: string; mib: number; count: number }[];
}

interface Snapshot {
  snapshot: { meta: { node_fields: string[]; node_types: [string[], ...unknown[]] } };
  nodes: number[];
  strings: string[];
}

const round = (bytes: number) => Number((bytes / (1024 * 1024)).toFixed(2));

/** Reads a .heapsnapshot file (JSON) and sums self sizes by type and by name. */
export async function summarizeHeapSnapshot(path: string, top = 12): Promise<HeapSummary> {
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
  return {
    total_mib: round(total),
    by_type_mib: Object.fromEntries([...byType].sort((a, b) => b[1] - a[1]).map(([t, b]) => [t, round(b)])),
    top_mib: [...byName].sort((a, b) => b[1].bytes - a[1].bytes).slice(0, top).map(([name, e]) => ({
      name,
      mib: round(e.bytes),
      count: e.count,
    })),
  };
}
