/**
 * Entry point of the Kubernetes integration. Decides from flags and environment whether there is a
 * cluster to talk to (--kubeconfig, then $KUBECONFIG, then the in-cluster service account) and only
 * then loads @kubernetes/client-node (tens of MiB and a noticeable start-up cost), so standalone mode
 * and `version` never load it.
 */
import type { Logger } from "../log.ts";
import type { DriverMetrics } from "../metrics.ts";
import type { Published, RotationFailure, SpcSource } from "../volume/ports.ts";
import type { MountedReader } from "./secret-sync.ts";

/** Where the cluster configuration comes from. */
export type ClusterConfig =
  | { source: "kubeconfig"; path: string }
  | { source: "KUBECONFIG"; paths: string }
  | { source: "in-cluster" };

/** The in-cluster service account token, as kubelet projects it. */
export const SERVICE_ACCOUNT_TOKEN = "/var/run/secrets/kubernetes.io/serviceaccount/token";

/** Environment and files consulted, as parameters for tests. */
export interface ClusterEnvironment {
  env: (name: string) => string | undefined;
  exists: (path: string) => boolean;
}

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

/** What the node plugin gets from the cluster. */
export interface KubernetesParts {
  /** SecretProviderClasses, informer-backed. */
  spcs: SpcSource;
  /** Records the SPCPS of a mount or rotation (a failure fails the publish) and schedules the sync. */
  afterPublish(published: Published): Promise<void>;
  /** Records `mounted: false` on the SPCPS of an unmounted volume. */
  afterUnpublish(targetPath: string): Promise<void>;
  /** Reports a failed rotation as a Warning Event on the pod. */
  rotationFailed(failure: RotationFailure): Promise<void>;
  /** Stops informers, the sync controller and the connection pool. */
  stop(): Promise<void>;
}

/** Options of {@link startKubernetes}. */
export interface KubernetesOptions {
  /** --kubeconfig */
  kubeconfig?: string;
  nodeId: string;
  log: Logger;
  metrics: DriverMetrics;
  /** Reads the files mounted in a volume (the atomic writer's read). */
  reader: MountedReader;
  /** Tuning, mostly for tests. */
  tuning?: KubernetesTuning;
  /** Consulted instead of the process environment (tests). */
  environment?: ClusterEnvironment;
}

/** Knobs with production defaults. */
export interface KubernetesTuning {
  qps?: number;
  burst?: number;
  /** Deadline of one API request (default 10 s). */
  requestTimeoutMs?: number;
  /** How long start-up waits for the caches' first list before serving anyway (default 10 s). */
  syncTimeoutMs?: number;
  /** The server ends each watch after this long (default 300 s). */
  watchTimeoutSeconds?: number;
  /** Informer retry delays after a failed list or watch (default 200 ms … 10 s). */
  informerBackoffMs?: { initial: number; max: number };
  /** Secret sync: periodic resync (default 5 min) and retry delays (default 1 s … 5 min). */
  resyncMs?: number;
  syncBackoffMs?: { initial: number; max: number };
}

/** Starts the Kubernetes integration; null when there is no cluster configuration (standalone). */
export async function startKubernetes(options: KubernetesOptions): Promise<KubernetesParts | null> {
  const config = findClusterConfig(options.kubeconfig, options.environment);
  if (config === null) return null;
  const { connectCluster } = await import("./cluster.ts");
  return await connectCluster(config, options);
}
