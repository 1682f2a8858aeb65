/**
 * The command lines of manifests/daemonset.yaml's containers, translated for processes on the host: every
 * container path an argument names is mapped through the container's volumeMounts to its hostPath volume,
 * and every host path is moved under the node's own host root (so `/var/lib/kubelet/...` becomes
 * `<hostRoot>/var/lib/kubelet/...`). `$(VAR)` references are expanded from the container's env, with
 * `fieldRef: spec.nodeName` answered by the node's name. So the harness runs what the DaemonSet would run,
 * and a wrong socket path or volume in the manifest breaks the real-node tests.
 */
import { join } from "node:path";
import { parse as parseYaml } from "yaml";

const MANIFEST = new URL("../../manifests/daemonset.yaml", import.meta.url);

interface Container {
  name: string;
  args?: string[];
  env?: { name: string; value?: string; valueFrom?: { fieldRef?: { fieldPath: string } } }[];
  volumeMounts?: { name: string; mountPath: string }[];
}

interface DaemonSet {
  spec: {
    template: {
      spec: {
        containers: Container[];
        volumes: { name: string; hostPath?: { path: string } }[];
      };
    };
  };
}

/** One container of the DaemonSet as a host process: its args, translated. */
export interface HostCommand {
  args: string[];
  /** Host directories (under the host root) the container mounts, created before it starts. */
  hostDirs: string[];
  /** The host path of a path inside the container. */
  hostPath(containerPath: string): string;
}

/** Replaces (or appends) `--name=value` flags of `args`. */
export function withFlags(args: string[], flags: Record<string, string>): string[] {
  const named = (arg: string) => /^--?([a-z0-9-]+)=/.exec(arg)?.[1];
  return [
    ...args.filter((arg) => {
      const name = named(arg);
      return name === undefined || !Object.hasOwn(flags, name);
    }),
    ...Object.entries(flags).map(([name, value]) => `--${name}=${value}`),
  ];
}

/** Reads the DaemonSet and translates container `name` for a node called `nodeName` under `hostRoot`. */
export async function hostCommand(name: string, nodeName: string, hostRoot: string): Promise<HostCommand> {
  const ds = parseYaml(await Deno.readTextFile(MANIFEST)) as DaemonSet;
  const pod = ds.spec.template.spec;
  const container = pod.containers.find((c) => c.name === name);
  if (!container) throw new Error(`manifests/daemonset.yaml has no container named ${name}`);
  const hostPathOf = new Map(pod.volumes.map((v) => [v.name, v.hostPath?.path]));
  const mounts = (container.volumeMounts ?? []).map((m) => {
    // emptyDir and other pod-owned volumes get a directory of their own.
    const hostPath = hostPathOf.get(m.name) ?? `/volumes/${name}/${m.name}`;
    return { containerPath: m.mountPath, hostPath: join(hostRoot, hostPath) };
  });

  const env = new Map<string, string>();
  for (const e of container.env ?? []) {
    const field = e.valueFrom?.fieldRef?.fieldPath;
    env.set(e.name, field === "spec.nodeName" ? nodeName : e.value ?? "");
  }
  const expand = (arg: string) => arg.replace(/\$\(([A-Za-z_][A-Za-z0-9_]*)\)/g, (_, v) => env.get(v) ?? "");

  // A container path maps through the longest mountPath that contains it; other absolute paths are host
  // paths already (such as --kubelet-registration-path, which is kubelet's view).
  const toHost = (path: string): string => {
    const mount = mounts
      .filter((m) => path === m.containerPath || path.startsWith(m.containerPath.replace(/\/?$/, "/")))
      .sort((a, b) => b.containerPath.length - a.containerPath.length)[0];
    return mount ? join(mount.hostPath, path.slice(mount.containerPath.length)) : join(hostRoot, path);
  };
  const args = (container.args ?? []).map(expand).map((arg) => {
    const m = /^(--?[a-z0-9-]+=)(unix:\/\/)?(\/.*)$/.exec(arg);
    if (!m) return arg;
    const paths = m[3].split(",").map(toHost).join(",");
    return `${m[1]}${m[2] ?? ""}${paths}`;
  });
  return { args, hostDirs: mounts.map((m) => m.hostPath), hostPath: toHost };
}
