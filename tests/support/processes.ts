/**
 * Running the driver's own commands as child processes, as operators and kubelet see them: the
 * production bundle (tests/support/program.ts).
 */
import { driverArgs } from "./program.ts";

/** The lines of a byte stream (jsr:@std/streams' TextLineStream is not reachable here). */
async function* linesOf(stream: ReadableStream<Uint8Array>): AsyncGenerator<string> {
  let pending = "";
  for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
    const parts = (pending + chunk).split("\n");
    pending = parts.pop()!;
    yield* parts;
  }
  if (pending !== "") yield pending;
}

/** A driver child whose stderr lines are collected. */
export interface DriverProcess {
  child: Deno.ChildProcess;
  /** Every stderr line so far. */
  lines: string[];
  /** Resolves with the first stderr line matching `pattern` (rejects after `timeoutMs` or on exit). */
  waitForLine(pattern: RegExp, timeoutMs?: number): Promise<string>;
  /** SIGTERM (or `signal`) and wait for the exit status. */
  stop(signal?: Deno.Signal): Promise<Deno.CommandStatus>;
}

/** Starts the driver (`main.ts`, or the production bundle) with `args`, with `env` added to this process's environment. */
export function startMain(args: string[], env: Record<string, string> = {}): DriverProcess {
  const child = new Deno.Command(Deno.execPath(), {
    args: driverArgs(args),
    env,
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const lines: string[] = [];
  const waiters: { pattern: RegExp; resolve: (line: string) => void }[] = [];
  const reading = (async () => {
    for await (const line of linesOf(child.stderr)) {
      lines.push(line);
      for (const w of waiters.filter((w) => w.pattern.test(line))) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(line);
      }
    }
  })();
  const exited = child.status;
  return {
    child,
    lines,
    waitForLine(pattern, timeoutMs = 15_000) {
      const seen = lines.find((l) => pattern.test(l));
      if (seen) return Promise.resolve(seen);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(
          () => reject(new Error(`no line matching ${pattern} within ${timeoutMs}ms`)),
          timeoutMs,
        );
        const waiter = {
          pattern,
          resolve: (line: string) => {
            clearTimeout(timer);
            resolve(line);
          },
        };
        waiters.push(waiter);
        exited.then((s) => {
          if (!waiters.includes(waiter)) return;
          clearTimeout(timer);
          reject(
            new Error(`process exited (${s.code}) before a line matching ${pattern}:\n${lines.join("\n")}`),
          );
        });
      });
    },
    async stop(signal = "SIGTERM") {
      try {
        child.kill(signal);
      } catch { /* already exited */ }
      const status = await exited;
      await reading;
      return status;
    },
  };
}
