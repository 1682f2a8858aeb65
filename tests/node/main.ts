/**
 * `deno task node <command>`: one real node beside a test control plane, from the command line.
 *
 *   up --dir DIR     add the node to the cluster `deno task cluster up --dir DIR` started: containerd,
 *                    kubelet, the registrar, the driver (the DaemonSet's args, its ServiceAccount) and the
 *                    local provider (serving DIR/node/secrets); returns once kubelet has registered the driver
 *   down --dir DIR   stop the node and remove its mounts, processes and cgroups (the cluster keeps running)
 */
import { parseArgs } from "node:util";
import { startNode, stopNode } from "./node.ts";

const USAGE = "usage: deno task node up --dir DIR | down --dir DIR";

async function main(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    options: { dir: { type: "string" }, help: { type: "boolean", short: "h" } },
    allowPositionals: true,
  });
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  const [verb, ...extra] = positionals;
  if (extra.length > 0 || !["up", "down"].includes(verb ?? "") || !values.dir) {
    console.error(USAGE);
    return 2;
  }
  if (verb === "down") {
    await stopNode(values.dir);
    console.error(`node: stopped; nothing of it is left outside ${values.dir}`);
    return 0;
  }
  const node = await startNode(values.dir, (line) => console.error(`node: ${line}`));
  console.error(
    `node: ${node.name} is Ready with the driver registered, in ${node.startupSeconds.toFixed(1)} s`,
  );
  console.error(`node: secrets served by the local provider: ${node.files.secrets}`);
  return 0;
}

if (import.meta.main) {
  try {
    Deno.exit(await main(Deno.args));
  } catch (err) {
    console.error(`node: ${err instanceof Error ? err.message : String(err)}`);
    Deno.exit(1);
  }
}
