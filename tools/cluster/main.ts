/**
 * `deno task cluster <command>`: the test control plane from the command line.
 *
 *   up --dir DIR [--timeout SECONDS]   start etcd, kube-apiserver and kube-controller-manager, apply
 *                                      manifests/, write DIR/admin.kubeconfig, DIR/driver.kubeconfig and
 *                                      DIR/ca.crt; returns once the API server is ready, leaving it running
 *   down --dir DIR                     stop it and remove what `up` made
 *   run [--dir DIR] -- COMMAND...      up (in a temporary DIR by default), run COMMAND with
 *                                      SSCSI_CLUSTER_DIR=DIR, down (keeping DIR/logs when COMMAND
 *                                      fails); exits with COMMAND's status
 */
import { parseArgs } from "node:util";
import { clusterDown, clusterUp } from "./control-plane.ts";

const USAGE = "usage: deno task cluster up --dir DIR [--timeout SECONDS] | down --dir DIR | " +
  "run [--dir DIR] -- COMMAND...";

/** The variable the tests read to find the cluster (tests/support/cluster.ts). */
export const CLUSTER_DIR_VARIABLE = "SSCSI_CLUSTER_DIR";

const progress = (line: string) => console.error(`cluster: ${line}`);

async function main(args: string[]): Promise<number> {
  const split = args.indexOf("--");
  const own = split < 0 ? args : args.slice(0, split);
  const command = split < 0 ? [] : args.slice(split + 1);
  const { values, positionals } = parseArgs({
    args: own,
    options: { dir: { type: "string" }, timeout: { type: "string" }, help: { type: "boolean", short: "h" } },
    allowPositionals: true,
  });
  const [verb, ...extra] = positionals;
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  if (extra.length > 0 || !["up", "down", "run"].includes(verb ?? "")) {
    console.error(USAGE);
    return 2;
  }
  const timeoutMs = values.timeout === undefined ? undefined : Number(values.timeout) * 1000;
  if (timeoutMs !== undefined && !(timeoutMs > 0)) {
    console.error(`--timeout must be a positive number of seconds, not ${values.timeout}`);
    return 2;
  }
  if (verb !== "run" && !values.dir) {
    console.error(`${verb} needs --dir DIR`);
    return 2;
  }
  if (verb === "run" && command.length === 0) {
    console.error("run needs a command after --");
    return 2;
  }

  if (verb === "down") {
    await clusterDown(values.dir!);
    progress(`stopped; ${values.dir} cleaned`);
    return 0;
  }
  let dir = values.dir;
  if (dir === undefined) {
    dir = await Deno.makeTempDir({ prefix: "sscsi-cluster-" });
    await Deno.remove(dir); // a name of its own; `up` makes the directory, so `down` removes it again
  }
  const cluster = await clusterUp(dir, { timeoutMs, log: progress });
  if (verb === "up") {
    progress(`up at ${cluster.server}: KUBECONFIG=${cluster.files.adminKubeconfig}`);
    return 0;
  }
  let code = 1;
  try {
    const child = new Deno.Command(command[0], {
      args: command.slice(1),
      env: { [CLUSTER_DIR_VARIABLE]: dir },
    }).spawn();
    code = (await child.status).code;
  } finally {
    await clusterDown(dir, { keepLogs: code !== 0 });
  }
  if (code !== 0) progress(`the command failed; the cluster's logs are kept in ${dir}/logs`);
  return code;
}

if (import.meta.main) {
  try {
    Deno.exit(await main(Deno.args));
  } catch (err) {
    console.error(`cluster: ${err instanceof Error ? err.message : String(err)}`);
    Deno.exit(1);
  }
}
