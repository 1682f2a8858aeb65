/** Where tools/cluster/build.sh put the control plane's binaries, at the versions of versions.env. */
import { join } from "node:path";

const HERE = new URL(".", import.meta.url).pathname;

/** The pinned versions (tools/cluster/versions.env, which build.sh reads too). */
export function versions(): { k8s: string; etcd: string } {
  const text = Deno.readTextFileSync(join(HERE, "versions.env"));
  const value = (key: string) => {
    const match = text.match(new RegExp(`^${key}=(\\S+)$`, "m"));
    if (!match) throw new Error(`tools/cluster/versions.env does not set ${key}`);
    return match[1];
  };
  return { k8s: value("K8S_VERSION"), etcd: value("ETCD_VERSION") };
}

/** Absolute paths of the binaries the harness runs. */
export interface Binaries {
  etcd: string;
  kubeApiserver: string;
  kubeControllerManager: string;
  kubectl: string;
  kubelet: string;
}

/** The binaries in the build cache; throws one sentence naming the build command when one is missing. */
export function findBinaries(): Binaries {
  const cache = Deno.env.get("SSCSI_CACHE") ??
    join(Deno.env.get("HOME") ?? "/root", ".cache/secrets-store-csi");
  const v = versions();
  const k8s = join(cache, `k8s-${v.k8s}`);
  const binaries: Binaries = {
    etcd: join(cache, `etcd-${v.etcd}`, "etcd"),
    kubeApiserver: join(k8s, "kube-apiserver"),
    kubeControllerManager: join(k8s, "kube-controller-manager"),
    kubectl: join(k8s, "kubectl"),
    kubelet: join(k8s, "kubelet"),
  };
  for (const path of Object.values(binaries)) {
    try {
      Deno.statSync(path);
    } catch {
      throw new Error(
        `${path} is missing: build the control plane first with \`bash tools/cluster/build.sh\` (cached; a cold build takes about 45 minutes on 2 cores)`,
      );
    }
  }
  return binaries;
}
