/**
 * Bench-only: the driver (`main.ts`, same arguments) in a process that also has @kubernetes/client-node
 * loaded and in use, to measure what the Kubernetes client costs before the driver's own Kubernetes mode
 * exists. With BENCH_KUBECONFIG it loads that kubeconfig, creates CoreV1Api and CustomObjectsApi, lists this
 * node's pods and SecretProviderClassPodStatuses and keeps a watch on the latter open, as a driver in a
 * cluster would. With BENCH_HEAP_SNAPSHOT=<path> it writes a heap snapshot there on SIGUSR2 (then
 * `<path>.done`). Without either it is main.ts.
 */
import v8 from "node:v8";
import { main } from "../main.ts";

const SPCPS = {
  group: "secrets-store.csi.x-k8s.io",
  version: "v1",
  plural: "secretproviderclasspodstatuses",
};

async function loadKubernetesClient(kubeconfig: string): Promise<unknown[]> {
  const k8s = await import("@kubernetes/client-node");
  const kc = new k8s.KubeConfig();
  kc.loadFromFile(kubeconfig);
  const core = kc.makeApiClient(k8s.CoreV1Api);
  const custom = kc.makeApiClient(k8s.CustomObjectsApi);
  const selector = "internal.secrets-store.csi.k8s.io/node-name=bench";
  await core.listPodForAllNamespaces({ fieldSelector: "spec.nodeName=bench" });
  await custom.listClusterCustomObject({ ...SPCPS, labelSelector: selector });
  const watch = await new k8s.Watch(kc).watch(
    `/apis/${SPCPS.group}/${SPCPS.version}/${SPCPS.plural}`,
    { labelSelector: selector },
    () => {},
    () => {},
  );
  return [kc, core, custom, watch];
}

const kubeconfig = Deno.env.get("BENCH_KUBECONFIG");
const snapshotPath = Deno.env.get("BENCH_HEAP_SNAPSHOT");
// Kept reachable for the life of the process, as the driver's clients would be.
const clients = kubeconfig ? await loadKubernetesClient(kubeconfig) : [];
if (snapshotPath) {
  Deno.addSignalListener("SIGUSR2", () => {
    v8.writeHeapSnapshot(snapshotPath);
    Deno.writeTextFileSync(`${snapshotPath}.done`, String(clients.length));
  });
}
Deno.exit(await main(Deno.args));
