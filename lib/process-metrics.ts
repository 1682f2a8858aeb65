/**
 * The process metrics operators chase OOMs and fd leaks with, under the names Prometheus' Go process
 * collector gives them in upstream's registry (process_resident_memory_bytes, ...), plus V8's heap under
 * our own prefix. Read from /proc when scraped: no timers, nothing between scrapes.
 */
import { Counter, Gauge, type Registry } from "prom-client";

/** Linux's USER_HZ: /proc/<pid>/stat counts CPU time in these ticks. */
const CLOCK_TICKS_PER_SECOND = 100;

/** Fields of /proc/self/stat after the command name (which may hold spaces and parentheses). */
async function procStat(): Promise<string[]> {
  const text = await Deno.readTextFile("/proc/self/stat");
  return text.slice(text.lastIndexOf(")") + 2).split(" ");
}

async function openFds(): Promise<number> {
  let n = 0;
  for await (const _ of Deno.readDir("/proc/self/fd")) n++;
  return n;
}

async function maxFds(): Promise<number> {
  const limits = await Deno.readTextFile("/proc/self/limits");
  const soft = /^Max open files\s+(\S+)/m.exec(limits)?.[1];
  return soft === undefined || soft === "unlimited" ? -1 : Number(soft);
}

/** Seconds since the epoch at which this process started: boot time + its start tick. */
async function startTimeSeconds(): Promise<number> {
  const boot = /^btime (\d+)$/m.exec(await Deno.readTextFile("/proc/stat"))?.[1];
  const startTicks = Number((await procStat())[19]);
  return Number(boot) + startTicks / CLOCK_TICKS_PER_SECOND;
}

/** Registers the process and V8 heap gauges on `registers`. */
export function processCollectors(registers: Registry[]): void {
  let startTime: number | undefined;
  new Counter({
    name: "process_cpu_seconds_total",
    help: "Total user and system CPU time spent in seconds.",
    registers,
    async collect() {
      const stat = await procStat();
      this.reset();
      this.inc((Number(stat[11]) + Number(stat[12])) / CLOCK_TICKS_PER_SECOND);
    },
  });
  const gauge = (name: string, help: string, read: () => number | Promise<number>) =>
    new Gauge({
      name,
      help,
      registers,
      async collect() {
        this.set(await read());
      },
    });
  gauge("process_resident_memory_bytes", "Resident memory size in bytes.", () => Deno.memoryUsage().rss);
  gauge(
    "process_virtual_memory_bytes",
    "Virtual memory size in bytes.",
    async () => Number((await procStat())[20]),
  );
  gauge("process_open_fds", "Number of open file descriptors.", openFds);
  gauge("process_max_fds", "Maximum number of open file descriptors.", maxFds);
  gauge(
    "process_start_time_seconds",
    "Start time of the process since unix epoch in seconds.",
    async () => startTime ??= await startTimeSeconds(),
  );
  gauge("secrets_store_csi_heap_used_bytes", "V8 heap in use, in bytes.", () => Deno.memoryUsage().heapUsed);
  gauge(
    "secrets_store_csi_heap_total_bytes",
    "V8 heap reserved, in bytes.",
    () => Deno.memoryUsage().heapTotal,
  );
  gauge(
    "secrets_store_csi_external_memory_bytes",
    "Memory held outside the V8 heap by buffers and native objects, in bytes.",
    () => Deno.memoryUsage().external,
  );
}
