/**
 * A memory cgroup for one child process (root only), below the cgroup this process is in: cgroup v1's
 * memory controller (`/sys/fs/cgroup/memory/...`, as on hybrid hosts) or cgroup v2's unified hierarchy.
 * The child is started through `sh -c 'echo $$ > cgroup.procs; exec ...'`, so every page it ever
 * allocates (tmpfs pages it writes included) is charged to the cgroup, as in a container.
 */
import { join } from "node:path";

const V1_ROOT = "/sys/fs/cgroup/memory";
const V2_ROOT = "/sys/fs/cgroup";

/** What the cgroup saw. */
export interface CgroupMemory {
  /** Current usage (bytes). */
  usage: number;
  /** Highest usage since creation (bytes). */
  peak: number;
  /** OOM kills inside the cgroup. */
  oomKills: number;
}

/** A memory cgroup with a limit. */
export interface MemoryCgroup {
  path: string;
  version: 1 | 2;
  limitBytes: number;
  /** `[sh, -c, ..., --]`: put in front of a command so it runs inside the cgroup. */
  wrap: string[];
  read(): Promise<CgroupMemory>;
  /** Removes the cgroup (its processes must have exited). */
  remove(): Promise<void>;
}

const exists = (path: string) => Deno.stat(path).then(() => true, () => false);

async function ownPath(controller: "memory" | ""): Promise<string> {
  const lines = (await Deno.readTextFile("/proc/self/cgroup")).split("\n");
  for (const line of lines) {
    const [, controllers, path] = line.split(":");
    if (controllers === undefined) continue;
    if (controller === "" ? line.startsWith("0::") : controllers.split(",").includes(controller)) return path;
  }
  throw new Error(`this process is in no ${controller || "unified"} cgroup (/proc/self/cgroup)`);
}

function number(text: string): number {
  return text.trim() === "max" ? Infinity : Number(text.trim());
}

/** Creates a cgroup limited to `limitBytes` (swap included, so nothing is swapped out instead of killed). */
export async function createMemoryCgroup(limitBytes: number): Promise<MemoryCgroup> {
  const name = `sscsi-${crypto.randomUUID().slice(0, 8)}`;
  const v1 = await exists(join(V1_ROOT, "memory.limit_in_bytes"));
  const path = v1 ? join(V1_ROOT, await ownPath("memory"), name) : join(V2_ROOT, await ownPath(""), name);
  await Deno.mkdir(path);
  const write = (file: string, value: string) => Deno.writeTextFile(join(path, file), value);
  const read = async (file: string) => await Deno.readTextFile(join(path, file));
  if (v1) {
    await write("memory.limit_in_bytes", String(limitBytes));
    // memsw exists only with swap accounting; without it there is nothing to swap to inside the cgroup.
    await write("memory.memsw.limit_in_bytes", String(limitBytes)).catch(() => {});
  } else {
    await write("memory.max", String(limitBytes));
    await write("memory.swap.max", "0").catch(() => {});
  }
  return {
    path,
    version: v1 ? 1 : 2,
    limitBytes,
    wrap: ["sh", "-c", `echo $$ > ${join(path, "cgroup.procs")} && exec "$@"`, "--"],
    async read() {
      if (v1) {
        const oom = /^oom_kill (\d+)/m.exec(await read("memory.oom_control"));
        return {
          usage: number(await read("memory.usage_in_bytes")),
          peak: number(await read("memory.max_usage_in_bytes")),
          oomKills: oom ? Number(oom[1]) : 0,
        };
      }
      const events = /^oom_kill (\d+)/m.exec(await read("memory.events"));
      return {
        usage: number(await read("memory.current")),
        peak: number(await read("memory.peak").catch(() => read("memory.current"))),
        oomKills: events ? Number(events[1]) : 0,
      };
    },
    async remove() {
      for (let i = 0; i < 50; i++) {
        try {
          await Deno.remove(path);
          return;
        } catch {
          await new Promise((r) => setTimeout(r, 100));
        }
      }
    },
  };
}
