/**
 * The node's long-running processes (containerd, kubelet, the registrar, the driver, the local provider):
 * started with their output appended to a log file, recorded in DIR/node/processes.json so that any process
 * (the test, `deno task node down`) stops exactly them, and stopped by pid after checking the pid still
 * runs the recorded command (pids are reused).
 */
import { join } from "node:path";

/** How one process was started, so it can be stopped, and restarted exactly so. */
export interface ProcessRecord {
  pid: number;
  /** From /proc/<pid>/stat: tells this process from a later one with the same pid. */
  startTime: string;
  argv: string[];
  log: string;
}

export type Processes = Record<string, ProcessRecord>;

const STATE = "processes.json";

export function readProcesses(stateDir: string): Processes {
  try {
    return JSON.parse(Deno.readTextFileSync(join(stateDir, STATE))) as Processes;
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return {};
    throw err;
  }
}

function writeProcesses(stateDir: string, processes: Processes): void {
  Deno.writeTextFileSync(join(stateDir, STATE), JSON.stringify(processes, null, 2) + "\n");
}

/**
 * Starts `argv` detached from this process's pipes (a shell execs it with stdout and stderr appended to
 * `log`), so it outlives a `deno task node up` that started it. Records it under `name`.
 */
export function startProcess(
  stateDir: string,
  name: string,
  argv: string[],
  log: string,
  env: Record<string, string> = {},
): ProcessRecord {
  const child = new Deno.Command("/bin/sh", {
    args: ["-c", 'exec "$0" "$@" >>"$SSCSI_NODE_LOG" 2>&1', ...argv],
    env: { ...env, SSCSI_NODE_LOG: log },
    stdin: "null",
    stdout: "null",
    stderr: "null",
    // Its own session: a Ctrl-C of the test or of `deno task node up` does not reach it.
    detached: true,
  }).spawn();
  child.unref();
  // Reap it when it exits while this process lives; the status is read from /proc by whoever stops it.
  child.status.catch(() => {});
  const record = { pid: child.pid, startTime: procStat(child.pid)?.startTime ?? "", argv, log };
  writeProcesses(stateDir, { ...readProcesses(stateDir), [name]: record });
  return record;
}

/** The state letter and start time (clock ticks after boot) of a pid, from /proc/<pid>/stat. */
export function procStat(pid: number): { state: string; startTime: string } | undefined {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    // The command name (field 2) may hold spaces and parentheses: count fields after its last ")".
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return { state: fields[0], startTime: fields[19] };
  } catch {
    return undefined;
  }
}

/** True while `record`'s process runs (not a zombie, not a later process that reused the pid). */
export function isRunning(record: ProcessRecord): boolean {
  const stat = procStat(record.pid);
  return stat !== undefined && stat.state !== "Z" && stat.startTime === record.startTime;
}

/** SIGTERM, then SIGKILL after `graceMs`; resolves once the process is gone. Forgets `name`. */
export async function stopProcess(stateDir: string, name: string, graceMs = 10_000): Promise<void> {
  const processes = readProcesses(stateDir);
  const record = processes[name];
  if (record) await stopRecord(record, graceMs);
  delete processes[name];
  writeProcesses(stateDir, processes);
}

export async function stopRecord(record: ProcessRecord, graceMs = 10_000): Promise<void> {
  const signal = (sig: Deno.Signal) => {
    try {
      if (isRunning(record)) Deno.kill(record.pid, sig);
    } catch { /* gone */ }
  };
  signal("SIGTERM");
  const deadline = Date.now() + graceMs;
  while (isRunning(record) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  if (isRunning(record)) {
    signal("SIGKILL");
    while (isRunning(record)) await new Promise((r) => setTimeout(r, 20));
  }
}

/** Runs a command to completion; throws one sentence with its stderr when it fails. */
export async function run(argv: string[], options: { stdin?: string } = {}): Promise<string> {
  const child = new Deno.Command(argv[0], {
    args: argv.slice(1),
    stdin: options.stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  if (options.stdin !== undefined) {
    const writer = child.stdin.getWriter();
    await writer.write(new TextEncoder().encode(options.stdin));
    await writer.close();
  }
  const output = await child.output();
  const text = (bytes: Uint8Array) => new TextDecoder().decode(bytes).trim();
  if (output.code !== 0) {
    throw new Error(`${argv.slice(0, 4).join(" ")} … exited with ${output.code}: ${text(output.stderr)}`);
  }
  return text(output.stdout);
}

/** The last `lines` lines of a log file (for failure messages). */
export function tail(log: string, lines = 30): string {
  try {
    return Deno.readTextFileSync(log).trimEnd().split("\n").slice(-lines).join("\n");
  } catch {
    return `(no log at ${log})`;
  }
}
