/**
 * What the node plugin hands the Kubernetes integration and what it gets back. Imported by setup.ts
 * (which decides whether there is a cluster) and cluster.ts (which connects to it), so that neither
 * imports the other.
 */
import type { Logger } from "../log.ts";
import type { DriverMetrics } from "../metrics.ts";
import type { MountedVolumes, Published, RotationFailure, SpcSource } from "../volume/ports.ts";
import type { MountedReader } from "./secret-sync.ts";

/** Where the cluster configuration comes from. */
export type ClusterConfig =
  | { source: "kubeconfig"; path: string }
  | { source: "KUBECONFIG"; paths: string }
  | { source: "in-cluster" };

/** Environment and files consulted, as parameters for tests. */
export interface ClusterEnvironment {
  env: (name: string) => string | undefined;
  exists: (path: string) => boolean;
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
  /** The volumes the use case published: the only ones the Secret sync reads (the VolumeManager). */
  volumes: MountedVolumes;
  /** Tuning, mostly for tests. */
  tuning?: KubernetesTuning;
  /** Consulted instead of the process environment (tests). */
  environment?: ClusterEnvironment;
}

/** Knobs of the Kubernetes side; each one unset takes its value from defaults.ts. */
export interface KubernetesTuning {
  /** Client-side rate limit: sustained requests per second and the burst above it. */
  qps?: number;
  burst?: number;
  /** Deadline of one API request. */
  requestTimeoutMs?: number;
  /** How long start-up waits for the caches' first list before serving anyway. */
  syncTimeoutMs?: number;
  /** The server ends each watch after this long. */
  watchTimeoutSeconds?: number;
  /** Informer retry delays after a failed list or watch. */
  informerBackoffMs?: { initial: number; max: number };
  /** Secret sync: periodic resync of every object, and retry delays after a failure. */
  resyncMs?: number;
  syncBackoffMs?: { initial: number; max: number };
}
