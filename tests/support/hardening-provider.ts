/**
 * A provider plugin as a separate process, for tests that must kill or crash it: serves
 * `v1alpha1.CSIDriverProvider` on `--socket` with lib/provider/server.ts (what every Deno provider uses),
 * answers every Mount with `--files` small files after `--delay-ms`, prints `ready` on stderr once it
 * listens and `mount <n>` as the n-th Mount call arrives, and closes gracefully on SIGTERM (which sends
 * its clients a GOAWAY).
 *
 *   deno run -A tests/support/hardening-provider.ts --socket DIR/name.sock [--delay-ms N] [--files N]
 *
 * `startProviderProcess` runs it and waits for `ready`.
 */
import { parseArgs } from "node:util";
import { serveProvider } from "../../lib/provider/server.ts";
import { type ChildProcess, spawnDeno } from "./hardening-node.ts";

/** Options of the provider process. */
export interface ProviderProcessOptions {
  socket: string;
  /** How long each Mount takes; default 0. */
  delayMs?: number;
  /** How many files each Mount returns; default 1. */
  files?: number;
}

const SELF = new URL(import.meta.url).pathname;

/** Starts the provider process and waits until it listens. */
export async function startProviderProcess(options: ProviderProcessOptions): Promise<ChildProcess> {
  const process = spawnDeno(
    SELF,
    [
      "--socket",
      options.socket,
      "--delay-ms",
      String(options.delayMs ?? 0),
      "--files",
      String(options.files ?? 1),
    ],
  );
  try {
    await process.waitForLine(/^ready$/);
  } catch (err) {
    await process.stop("SIGKILL");
    throw err;
  }
  return process;
}

async function serve(): Promise<void> {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      socket: { type: "string" },
      "delay-ms": { type: "string", default: "0" },
      files: { type: "string", default: "1" },
    },
  });
  const delayMs = Number(values["delay-ms"]);
  const files = Array.from({ length: Number(values.files) }, (_, i) => ({
    path: `file-${i}`,
    mode: 0o644,
    contents: new TextEncoder().encode(`secret-${i}`),
  }));
  let calls = 0;
  const server = await serveProvider(values.socket!, {
    version: () => Promise.resolve({ version: "v1alpha1", runtime_name: "hardening", runtime_version: "1" }),
    mount: (_request, signal) =>
      new Promise((resolve, reject) => {
        console.error(`mount ${++calls}`);
        const answer = () => {
          signal.removeEventListener("abort", cancel);
          resolve({ object_version: files.map((f) => ({ id: f.path, version: "v1" })), files });
        };
        const timer = setTimeout(answer, delayMs);
        const cancel = () => {
          clearTimeout(timer);
          reject(signal.reason);
        };
        signal.addEventListener("abort", cancel, { once: true });
      }),
  });
  Deno.addSignalListener("SIGTERM", async () => {
    await server.close();
    Deno.exit(0);
  });
  console.error("ready");
}

if (import.meta.main) await serve();
