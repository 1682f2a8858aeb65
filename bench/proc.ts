/** Resident memory of a process from /proc/<pid>/status; imports nothing, so child scripts can use it cheaply. */

/** Resident memory of a process, from /proc/<pid>/status (bytes). */
export interface ProcessMemory {
  /** VmRSS: all resident pages. */
  rss: number;
  /** RssAnon: heap, stacks, V8 spaces: what the process itself allocated. */
  anon: number;
  /** RssFile: resident pages of mapped files (mostly the deno binary's code), shared via the page cache. */
  file: number;
  /** VmHWM: the peak of VmRSS. */
  peak: number;
  threads: number;
}

/** Reads VmRSS, RssAnon, RssFile, VmHWM and Threads of `pid`. */
export async function readProcessMemory(pid: number): Promise<ProcessMemory> {
  const status = await Deno.readTextFile(`/proc/${pid}/status`);
  const field = (name: string) => {
    const match = new RegExp(`^${name}:\\s+(\\d+)`, "m").exec(status);
    if (!match) throw new Error(`/proc/${pid}/status has no ${name}`);
    return Number(match[1]);
  };
  return {
    rss: field("VmRSS") * 1024,
    anon: field("RssAnon") * 1024,
    file: field("RssFile") * 1024,
    peak: field("VmHWM") * 1024,
    threads: field("Threads"),
  };
}
