/**
 * The one API server both sides of the differential suite talk to. By default the real control plane of
 * `deno task cluster up` (etcd, kube-apiserver, kube-controller-manager, manifests/ applied), read and
 * written with its kubectl; with SSCSI_UPSTREAM_API=standin, the in-process API stand-in
 * (tests/support/apiserver.ts), for runs on machines without the Kubernetes build.
 */
import { join } from "node:path";
import { startApiServer } from "../support/apiserver.ts";

/** What the suite needs of the API server. */
export interface Api {
  /** What serves the API, for messages. */
  kind: "cluster" | "standin";
  /**
   * kubeconfig file a side's driver uses: ours the driver's ServiceAccount (manifests/ RBAC); upstream
   * the admin account, since its controller-runtime caches list and watch more than manifests/ grants.
   */
  kubeconfig(side: "upstream" | "ours"): string;
  /** Creates or replaces each of `objects`, in order. */
  apply(...objects: Record<string, unknown>[]): Promise<void>;
  /** Objects of `resource` (plural, or plural.group) in `namespace`, optionally matching a label selector. */
  list(resource: string, namespace: string, labelSelector?: string): Promise<Record<string, unknown>[]>;
  close(): Promise<void>;
}

const REPO = new URL("../../", import.meta.url).pathname;

/** Starts the API server the environment asks for. */
export function startApi(): Promise<Api> {
  return Deno.env.get("SSCSI_UPSTREAM_API") === "standin" ? startStandin() : startCluster();
}

async function startStandin(): Promise<Api> {
  const server = await startApiServer();
  const dir = await Deno.makeTempDir({ prefix: "sscsi-diff-api-" });
  const kubeconfig = join(dir, "kubeconfig");
  await Deno.writeTextFile(kubeconfig, server.kubeconfig());
  return {
    kind: "standin",
    kubeconfig: () => kubeconfig,
    apply(...objects) {
      for (const object of objects) if (object.kind !== "Namespace") server.put(object as never);
      return Promise.resolve();
    },
    list(resource, namespace, labelSelector) {
      return Promise.resolve(
        server.list(resource, { namespace, labelSelector }) as unknown as Record<string, unknown>[],
      );
    },
    async close() {
      await server[Symbol.asyncDispose]();
      await Deno.remove(dir, { recursive: true });
    },
  };
}

async function run(cmd: string, args: string[], stdin?: string): Promise<string> {
  const child = new Deno.Command(cmd, {
    args,
    cwd: REPO,
    stdin: stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  if (stdin !== undefined) {
    const writer = child.stdin.getWriter();
    await writer.write(new TextEncoder().encode(stdin));
    await writer.close();
  }
  const output = await child.output();
  const decoder = new TextDecoder();
  if (!output.success) {
    throw new Error(
      `${cmd} ${args.join(" ")} failed (exit ${output.code}):\n${decoder.decode(output.stderr)}`,
    );
  }
  return decoder.decode(output.stdout);
}

async function startCluster(): Promise<Api> {
  const dir = await Deno.makeTempDir({ prefix: "sscsi-diff-cluster-" });
  try {
    await run(Deno.execPath(), ["task", "cluster", "up", "--dir", dir]);
  } catch (err) {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
    throw new Error(
      "the differential suite needs the real control plane (`deno task cluster up`; SSCSI_UPSTREAM_API=standin " +
        `uses the API stand-in instead): ${err instanceof Error ? err.message : err}`,
      { cause: err },
    );
  }
  const admin = join(dir, "admin.kubeconfig");
  const kubectl = await kubectlPath();
  return {
    kind: "cluster",
    kubeconfig: (side) => join(dir, side === "ours" ? "driver.kubeconfig" : "admin.kubeconfig"),
    async apply(...objects) {
      const list = { apiVersion: "v1", kind: "List", items: objects };
      await run(kubectl, ["--kubeconfig", admin, "apply", "-f", "-"], JSON.stringify(list));
    },
    async list(resource, namespace, labelSelector) {
      const args = ["--kubeconfig", admin, "get", resource, "-n", namespace, "-o", "json"];
      if (labelSelector) args.push("-l", labelSelector);
      return JSON.parse(await run(kubectl, args)).items;
    },
    async close() {
      await run(Deno.execPath(), ["task", "cluster", "down", "--dir", dir]).catch(() => {});
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    },
  };
}

/** kubectl from the control plane's build (tools/cluster/build.sh prints `k8s=<dir>`). */
async function kubectlPath(): Promise<string> {
  const out = await run("bash", [join(REPO, "tools/cluster/build.sh")]);
  const dir = /^k8s=(.*)$/m.exec(out)?.[1];
  if (!dir) throw new Error(`tools/cluster/build.sh did not name the k8s directory:\n${out}`);
  return join(dir, "kubectl");
}
