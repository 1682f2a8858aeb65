/**
 * Entry point of the Kubernetes integration. Decides from flags and environment whether there is a
 * cluster to talk to (--kubeconfig, then $KUBECONFIG, then the in-cluster service account) and only
 * then loads @kubernetes/client-node (tens of MiB and a noticeable start-up cost), so standalone mode
 * and `version` never load it.
 */
import type { ClusterConfig, ClusterEnvironment, KubernetesOptions, KubernetesParts } from "./options.ts";

export type {
  ClusterConfig,
  ClusterEnvironment,
  KubernetesOptions,
  KubernetesParts,
  KubernetesTuning,
} from "./options.ts";

/** The in-cluster service account token, as kubelet projects it. */
export const SERVICE_ACCOUNT_TOKEN = "/var/run/secrets/kubernetes.io/serviceaccount/token";

const realEnvironment: ClusterEnvironment = {
  env: (name) => Deno.env.get(name),
  exists: (path) => {
    try {
      Deno.statSync(path);
      return true;
    } catch {
      return false;
    }
  },
};

/** --kubeconfig, else $KUBECONFIG, else the in-cluster account; null when none is there (standalone). */
export function findClusterConfig(
  kubeconfig: string | undefined,
  environment: ClusterEnvironment = realEnvironment,
): ClusterConfig | null {
  if (kubeconfig) return { source: "kubeconfig", path: kubeconfig };
  const paths = environment.env("KUBECONFIG");
  if (paths) return { source: "KUBECONFIG", paths };
  if (
    environment.env("KUBERNETES_SERVICE_HOST") && environment.env("KUBERNETES_SERVICE_PORT") &&
    environment.exists(SERVICE_ACCOUNT_TOKEN)
  ) {
    return { source: "in-cluster" };
  }
  return null;
}

/** Starts the Kubernetes integration; null when there is no cluster configuration (standalone). */
export async function startKubernetes(options: KubernetesOptions): Promise<KubernetesParts | null> {
  const config = findClusterConfig(options.kubeconfig, options.environment);
  if (config === null) return null;
  const { connectCluster } = await import("./cluster.ts");
  return await connectCluster(config, options);
}
