/** What the figures were measured on, so that runs on different machines are not compared blindly. */

/** The machine and runtime of a bench run. */
export interface Machine {
  nproc: number;
  cpuModel: string;
  memTotalMiB: number;
  kernel: string;
  deno: string;
  v8: string;
  typescript: string;
  user: string;
}

async function firstMatch(file: string, pattern: RegExp): Promise<string> {
  const text = await Deno.readTextFile(file).catch(() => "");
  return pattern.exec(text)?.[1]?.trim() ?? "unknown";
}

/** Reads nproc, the CPU model, memory and kernel from /proc, and the Deno/V8 versions. */
export async function describeMachine(): Promise<Machine> {
  const memKiB = Number(await firstMatch("/proc/meminfo", /^MemTotal:\s+(\d+)/m));
  return {
    nproc: navigator.hardwareConcurrency,
    cpuModel: await firstMatch("/proc/cpuinfo", /^model name\s*:\s*(.+)$/m),
    memTotalMiB: Math.round(memKiB / 1024),
    kernel: Deno.osRelease(),
    deno: Deno.version.deno,
    v8: Deno.version.v8,
    typescript: Deno.version.typescript,
    user: Deno.uid() === 0 ? "root" : `uid ${Deno.uid()}`,
  };
}
