/**
 * One real Kubernetes node beside a test control plane (tools/cluster): containerd and kubelet with all
 * their state under DIR/node, the registrar registering the driver in that kubelet's plugins_registry, this
 * driver run on the host with the DaemonSet's args as the DaemonSet's ServiceAccount, and the embedded
 * `local` provider. Pods name the node in spec.nodeName (there is no scheduler) and use hostNetwork (there
 * is no pod network; containerd only needs a CNI config to report the network ready).
 *
 * Nothing is shared with the machine's own Kubernetes paths: the DaemonSet's host paths (/var/lib/kubelet,
 * /var/run/secrets-store-csi-providers, ...) live under DIR/h, pod cgroups under a cgroup of their
 * own (/sscsi-<id> in every hierarchy), containerd's sockets, root and state under DIR/node/containerd.
 * `stopNode` leaves no mounts, processes or cgroups behind, and `leftovers` checks that.
 */
import { join } from "node:path";
import { stringify as stringifyYaml } from "yaml";
import { nodeFlagNames } from "../../lib/config.ts";
import { mountsUnder } from "../../lib/mount/mountinfo.ts";
import { MNT_DETACH, sysUmount2 } from "../../lib/mount/libc.ts";
import { waitUntilListening } from "../../lib/unix-socket.ts";
import { findBinaries } from "../../tools/cluster/binaries.ts";
import { hostCommand, withFlags } from "./daemonset.ts";
import {
  isRunning,
  procStat,
  readProcesses,
  run,
  startProcess,
  stopProcess,
  stopRecord,
  tail,
} from "./processes.ts";

const HERE = new URL(".", import.meta.url).pathname;
const MAIN = new URL("../../main.ts", import.meta.url).pathname;

/**
 * The node's name (one node per control plane). kubelet reports its name as the node's Hostname address,
 * and the API server dials the first of Hostname, InternalDNS, InternalIP it finds (its default
 * --kubelet-preferred-address-types) for `kubectl exec` and logs: "localhost" is the name that resolves
 * everywhere without touching /etc/hosts.
 */
export const NODE_NAME = "localhost";
/** The driver's rotation poll interval on this node (the DaemonSet's 2m would make the rotation test slow). */
export const ROTATION_POLL_SECONDS = 10;
/** kubelet's pod sync period, which is also its republish period for requiresRepublish drivers. */
export const KUBELET_SYNC_SECONDS = 5;
/** The sysctls kubelet sets on start-up (pkg/kubelet/cm setupKernelTunables); restored by `stopNode`. */
const KUBELET_SYSCTLS = [
  "vm/overcommit_memory",
  "vm/panic_on_oom",
  "kernel/panic",
  "kernel/panic_on_oops",
  "kernel/keys/root_maxkeys",
  "kernel/keys/root_maxbytes",
];

/** Where everything of the node lives, under the cluster's DIR. */
export function nodeFiles(dir: string) {
  const node = join(dir, "node");
  // Short: unix socket paths (kubelet's plugins_registry/<driver>-reg.sock) must fit in 107 bytes.
  const host = join(dir, "h");
  const kubeletRoot = join(host, "var/lib/kubelet");
  return {
    node,
    host,
    kubeletRoot,
    logs: join(node, "logs"),
    containerd: join(node, "containerd"),
    containerdSocket: join(node, "containerd", "containerd.sock"),
    cniConf: join(node, "cni"),
    kubeletConfig: join(node, "kubelet-config.yaml"),
    kubeletKubeconfig: join(node, "kubelet.kubeconfig"),
    kubeletPki: join(node, "kubelet-pki"),
    /** Files served by the `local` provider (its --root). */
    secrets: join(node, "secrets"),
    /** The driver's --provider-volume, as the DaemonSet's hostPath maps it. */
    providers: join(host, "var/run/secrets-store-csi-providers"),
    csiSocket: join(kubeletRoot, "plugins/csi-secrets-store/csi.sock"),
    /** The cgroup name, sysctls and binaries this node started with (for `stopNode` from any process). */
    state: join(node, "node.json"),
  };
}

interface NodeState {
  cgroupRoot: string;
  sysctls: Record<string, string>;
  kubectl: string;
  ctr: string;
  adminKubeconfig: string;
  driverKubeconfig: string;
  /** The registrar's and the driver's translated DaemonSet args. */
  registrarArgv: string[];
  driverArgv: string[];
}

/** A running node. */
export interface Node {
  dir: string;
  name: string;
  files: ReturnType<typeof nodeFiles>;
  /** Runs kubectl as the cluster admin; returns stdout. */
  kubectl(args: string[], stdin?: string): Promise<string>;
  /** Stops and starts one component (kubelet, driver, registrar, provider) as it was started. */
  restart(component: "kubelet" | "driver"): Promise<void>;
  /** Seconds from the call of startNode to a registered driver. */
  startupSeconds: number;
}

/** Paths of the node's programs: tools/cluster/build.sh's kubelet and kubectl, tests/node/build.sh's parts. */
async function nodeParts() {
  const k8s = findBinaries();
  const built = Object.fromEntries(
    (await run(["bash", join(HERE, "build.sh")])).split("\n").map((line) => line.split("=", 2)),
  );
  const tool = async (name: string, pkg: string) => {
    try {
      return await run(["sh", "-c", `command -v ${name}`]);
    } catch {
      throw new Error(`${name} is not installed: install Debian's ${pkg} (.ci/run does)`);
    }
  };
  return {
    kubelet: k8s.kubelet,
    kubectl: k8s.kubectl,
    registrar: built.registrar,
    images: built.images,
    pauseImage: built.pause,
    containerd: await tool("containerd", "containerd"),
    ctr: await tool("ctr", "containerd"),
    runc: await tool("runc", "runc"),
  };
}

/**
 * Starts the node beside the running control plane in `dir` (`deno task cluster up --dir DIR`) and returns
 * once kubelet is Ready and has registered the driver (its CSINode lists secrets-store.csi.k8s.io).
 */
export async function startNode(dir: string, log: (line: string) => void = () => {}): Promise<Node> {
  const started = Date.now();
  const files = nodeFiles(dir);
  const parts = await nodeParts();
  for (const d of [files.logs, files.containerd, files.cniConf, files.kubeletPki, files.secrets]) {
    await Deno.mkdir(d, { recursive: true });
  }
  const cluster = {
    adminKubeconfig: join(dir, "admin.kubeconfig"),
    driverKubeconfig: join(dir, "driver.kubeconfig"),
    caCert: join(dir, "pki", "ca.crt"),
    caKey: join(dir, "pki", "ca.key"),
  };
  const driver = await hostCommand("secrets-store", NODE_NAME, files.host);
  const registrar = await hostCommand("node-driver-registrar", NODE_NAME, files.host);
  const state: NodeState = {
    cgroupRoot: `/sscsi-${crypto.randomUUID().slice(0, 8)}`,
    sysctls: Object.fromEntries(
      KUBELET_SYSCTLS.map((k) => [k, Deno.readTextFileSync(`/proc/sys/${k}`).trim()]),
    ),
    kubectl: parts.kubectl,
    ctr: parts.ctr,
    adminKubeconfig: cluster.adminKubeconfig,
    driverKubeconfig: cluster.driverKubeconfig,
    registrarArgv: [
      parts.registrar,
      ...registrar.args,
      `--plugin-registration-path=${registrar.hostPath("/registration")}`,
    ],
    driverArgv: [
      Deno.execPath(),
      "run",
      "-A",
      MAIN,
      ...withFlags(driver.args, {
        "metrics-addr": "127.0.0.1:0",
        "enable-secret-rotation": "true",
        "rotation-poll-interval": `${ROTATION_POLL_SECONDS}s`,
        "kubeconfig": cluster.driverKubeconfig,
        // A driver that only mounts below kubelet's pods/ must know this kubelet's root. The DaemonSet
        // relies on the flag's default (/var/lib/kubelet); once it passes the flag, daemonset.ts rebases it.
        ...(nodeFlagNames().includes("kubelet-root-dir") ? { "kubelet-root-dir": files.kubeletRoot } : {}),
      }),
    ],
  };
  Deno.writeTextFileSync(files.state, JSON.stringify(state, null, 2) + "\n");
  for (const d of [...driver.hostDirs, ...registrar.hostDirs]) await Deno.mkdir(d, { recursive: true });

  const kubectl = (args: string[], stdin?: string) =>
    run([parts.kubectl, `--kubeconfig=${cluster.adminKubeconfig}`, ...args], { stdin });
  const logOf = (name: string) => join(files.logs, `${name}.log`);
  const expectRunning = (name: string) => {
    const record = readProcesses(files.node)[name];
    if (!record || !isRunning(record)) throw new Error(`${name} exited:\n${tail(logOf(name))}`);
  };
  const waitForSocket = async (name: string, socket: string) => {
    const gone = () => {
      const record = readProcesses(files.node)[name];
      return !record || !isRunning(record);
    };
    if (await waitUntilListening(socket, 60_000, gone)) return;
    expectRunning(name);
    throw new Error(`${name} does not listen on ${socket}:\n${tail(logOf(name))}`);
  };

  try {
    log("starting containerd");
    await Deno.writeTextFile(join(files.cniConf, "10-host-only.conflist"), cniConfig());
    await Deno.writeTextFile(join(files.containerd, "config.toml"), containerdConfig(files, parts));
    startProcess(files.node, "containerd", [
      parts.containerd,
      "--config",
      join(files.containerd, "config.toml"),
    ], logOf("containerd"));
    await waitForSocket("containerd", files.containerdSocket);
    for (const image of ["pause", "test"]) {
      await run([
        parts.ctr,
        "--address",
        files.containerdSocket,
        "-n",
        "k8s.io",
        "images",
        "import",
        join(parts.images, `${image}.tar`),
      ]);
    }

    log("starting kubelet");
    makeCgroup(state.cgroupRoot);
    await writeKubeletCredentials(files, cluster, await kubectl(["config", "view", "--raw", "-o", "json"]));
    await Deno.writeTextFile(files.kubeletConfig, kubeletConfig(files, state, cluster.caCert));
    startProcess(files.node, "kubelet", kubeletArgv(parts.kubelet, files), logOf("kubelet"));
    await waitFor("the node to be Ready", 90_000, async () => {
      expectRunning("kubelet");
      const node = await kubectl(["get", "node", NODE_NAME, "-o", "json"]).catch(() => "");
      if (!node) return false;
      const conditions = JSON.parse(node).status?.conditions ?? [];
      return conditions.some((c: { type: string; status: string }) =>
        c.type === "Ready" && c.status === "True"
      );
    });

    log("starting the local provider, the driver and the registrar");
    startProcess(files.node, "provider", [
      Deno.execPath(),
      "run",
      "-A",
      MAIN,
      "provider",
      "local",
      `--provider-volume=${files.providers}`,
      `--root=${files.secrets}`,
    ], logOf("provider"));
    startProcess(files.node, "driver", state.driverArgv, logOf("driver"));
    await waitForSocket("driver", files.csiSocket);
    startProcess(files.node, "registrar", state.registrarArgv, logOf("registrar"));
    await waitFor("kubelet to register the driver", 60_000, async () => {
      expectRunning("registrar");
      const csiNode = await kubectl(["get", "csinode", NODE_NAME, "-o", "json"]).catch(() => "");
      return csiNode !== "" &&
        (JSON.parse(csiNode).spec?.drivers ?? []).some((d: { name: string }) =>
          d.name === "secrets-store.csi.k8s.io"
        );
    });
    await waitForSocket("provider", join(files.providers, "local.sock"));
  } catch (err) {
    await stopNode(dir).catch(() => {});
    throw err;
  }

  return {
    dir,
    name: NODE_NAME,
    files,
    kubectl,
    startupSeconds: (Date.now() - started) / 1000,
    async restart(component) {
      const record = readProcesses(files.node)[component];
      if (!record) throw new Error(`${component} is not running`);
      await stopProcess(files.node, component);
      startProcess(files.node, component, record.argv, record.log);
      if (component === "driver") await waitForSocket("driver", files.csiSocket);
    },
  };
}

/**
 * Stops the node in `dir` and removes everything it made outside DIR: Pods are deleted first (so kubelet
 * unmounts their volumes and the driver sees the NodeUnpublishVolume calls), then the processes stop,
 * containerd's remaining containers and shims are killed, mounts under DIR are detached, the pod cgroups
 * removed and the kernel tunables kubelet changed restored. Safe to call on a half-started node.
 */
export async function stopNode(dir: string): Promise<void> {
  const files = nodeFiles(dir);
  let state: NodeState | undefined;
  try {
    state = JSON.parse(await Deno.readTextFile(files.state)) as NodeState;
  } catch {
    return;
  }
  const processes = readProcesses(files.node);
  if (processes.kubelet && isRunning(processes.kubelet)) {
    const kubectl = (args: string[]) =>
      run([state!.kubectl, `--kubeconfig=${state!.adminKubeconfig}`, ...args]).catch(() => "");
    // This node's Pods only: the DaemonSet's own Pod waits for a scheduler that never comes.
    const onThisNode = ["--all-namespaces", `--field-selector=spec.nodeName=${NODE_NAME}`];
    await kubectl(["delete", "pods", ...onThisNode, "--grace-period=1", "--wait=false"]);
    await waitFor("kubelet to remove the pods", 60_000, async () => {
      const pods = await kubectl(["get", "pods", ...onThisNode, "-o", "name"]);
      return pods === "" && (await mountsUnder(join(files.kubeletRoot, "pods"))).length === 0;
    }).catch(() => {});
  }
  for (const name of ["registrar", "kubelet", "driver", "provider"]) await stopProcess(files.node, name);
  await removeContainers(files, state.ctr);
  await stopProcess(files.node, "containerd");
  // Shims outlive containerd; each one names this containerd's socket on its command line.
  for (const pid of processesMentioning(files.containerd)) {
    await stopRecord({ pid, startTime: procStat(pid)?.startTime ?? "", argv: procArgv(pid), log: "" }, 2_000);
  }
  for (const mount of (await mountsUnder(dir)).reverse()) {
    try {
      sysUmount2(mount.mountPoint, MNT_DETACH);
    } catch { /* already gone with its parent */ }
  }
  removeCgroup(state.cgroupRoot);
  for (const [key, value] of Object.entries(state.sysctls)) {
    try {
      Deno.writeTextFileSync(`/proc/sys/${key}`, value);
    } catch { /* read-only here: nothing was changed either */ }
  }
  await Deno.remove(files.state);
}

/** What a stopped node left behind: mounts under DIR, processes naming DIR, its cgroups. Empty when clean. */
export async function leftovers(dir: string, cgroupRoot: string): Promise<string[]> {
  const found: string[] = [];
  for (const m of await mountsUnder(dir)) found.push(`mount ${m.mountPoint}`);
  for (const pid of processesMentioning(dir)) found.push(`process ${pid}: ${procArgv(pid).join(" ")}`);
  if (cgroupRoot !== "") { for (const path of cgroupDirs(cgroupRoot)) found.push(`cgroup ${path}`); }
  return found;
}

/** The cgroup the node's pods live in (for {@link leftovers} after the state file is gone). */
export function nodeCgroupRoot(dir: string): string {
  return (JSON.parse(Deno.readTextFileSync(nodeFiles(dir).state)) as NodeState).cgroupRoot;
}

// ---------------------------------------------------------------------------------------------------

async function waitFor(what: string, timeoutMs: number, done: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!await done()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** containerd with everything under DIR/node/containerd and the CRI plugin on. */
function containerdConfig(
  files: ReturnType<typeof nodeFiles>,
  parts: { pauseImage: string; runc: string },
): string {
  const c = files.containerd;
  return `version = 2
root = "${c}/root"
state = "${c}/state"
disabled_plugins = ["io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs",
  "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.aufs",
  "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing"]
[grpc]
  address = "${files.containerdSocket}"
[ttrpc]
  address = "${files.containerdSocket}.ttrpc"
[plugins."io.containerd.internal.v1.opt"]
  path = "${c}/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "${parts.pauseImage}"
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  # The test machines withhold CAP_SYS_RESOURCE even from root: the pause container's -998 cannot be set.
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        BinaryName = "${parts.runc}"
        SystemdCgroup = false
        Root = "${c}/runc"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "${c}/cni-bin"
    conf_dir = "${files.cniConf}"
`;
}

/**
 * A CNI config containerd accepts as "network ready". The Pods use hostNetwork, so no CNI plugin ever runs
 * (the bin dir is empty on purpose: a Pod without hostNetwork fails to start instead of touching the host's
 * network).
 */
function cniConfig(): string {
  return JSON.stringify({ cniVersion: "1.0.0", name: "host-only", plugins: [{ type: "loopback" }] }) + "\n";
}

function kubeletArgv(kubelet: string, files: ReturnType<typeof nodeFiles>): string[] {
  return [
    kubelet,
    `--config=${files.kubeletConfig}`,
    `--kubeconfig=${files.kubeletKubeconfig}`,
    `--root-dir=${files.kubeletRoot}`,
    `--cert-dir=${files.kubeletPki}`,
    `--hostname-override=${NODE_NAME}`,
    "--v=2",
  ];
}

function kubeletConfig(files: ReturnType<typeof nodeFiles>, state: NodeState, caCert: string): string {
  return stringifyYaml({
    apiVersion: "kubelet.config.k8s.io/v1beta1",
    kind: "KubeletConfiguration",
    containerRuntimeEndpoint: `unix://${files.containerdSocket}`,
    // The machines run cgroup v1 with a PID 1 that is not systemd.
    cgroupDriver: "cgroupfs",
    failCgroupV1: false,
    cgroupRoot: state.cgroupRoot,
    failSwapOn: false,
    syncFrequency: `${KUBELET_SYNC_SECONDS}s`,
    fileCheckFrequency: "5s",
    address: "127.0.0.1",
    port: freePort(),
    healthzPort: 0,
    readOnlyPort: 0,
    // Callers need a client certificate of the cluster's CA (the API server has one); no further checks.
    authentication: {
      anonymous: { enabled: false },
      webhook: { enabled: false },
      x509: { clientCAFile: caCert },
    },
    authorization: { mode: "AlwaysAllow" },
    podLogsDir: join(files.node, "pod-logs"),
    volumePluginDir: join(files.node, "flexvolume"),
    resolvConf: "",
    // Shared build machines: never evict or garbage-collect the imported images for lack of disk.
    evictionHard: { "memory.available": "1Mi", "nodefs.available": "0%", "imagefs.available": "0%" },
    imageGCHighThresholdPercent: 100,
    imageGCLowThresholdPercent: 99,
    serializeImagePulls: false,
  });
}

/** A TCP port that was free a moment ago (kubelet's port cannot be 0). */
function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

/**
 * kubelet's credentials: a client certificate for system:node:<name> (group system:nodes) signed by the
 * cluster's CA, so the Node authorizer and NodeRestriction treat it as a real node.
 */
async function writeKubeletCredentials(
  files: ReturnType<typeof nodeFiles>,
  cluster: { caCert: string; caKey: string },
  adminConfigJson: string,
): Promise<void> {
  const key = join(files.kubeletPki, "node.key");
  const csr = join(files.kubeletPki, "node.csr");
  const cert = join(files.kubeletPki, "node.crt");
  const ext = join(files.kubeletPki, "node.ext");
  await run([
    "openssl",
    "req",
    "-new",
    "-newkey",
    "ec",
    "-pkeyopt",
    "ec_paramgen_curve:prime256v1",
    "-nodes",
    "-keyout",
    key,
    "-out",
    csr,
    "-subj",
    `/O=system:nodes/CN=system:node:${NODE_NAME}`,
  ]);
  await Deno.writeTextFile(ext, "keyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\n");
  await run([
    "openssl",
    "x509",
    "-req",
    "-in",
    csr,
    "-CA",
    cluster.caCert,
    "-CAkey",
    cluster.caKey,
    "-set_serial",
    `0x${crypto.randomUUID().replaceAll("-", "")}`,
    "-days",
    "2",
    "-extfile",
    ext,
    "-out",
    cert,
  ]);
  const admin = JSON.parse(adminConfigJson);
  const server = admin.clusters[0].cluster.server as string;
  await Deno.writeTextFile(
    files.kubeletKubeconfig,
    stringifyYaml({
      apiVersion: "v1",
      kind: "Config",
      clusters: [{ name: "test", cluster: { server, "certificate-authority": cluster.caCert } }],
      users: [{ name: NODE_NAME, user: { "client-certificate": cert, "client-key": key } }],
      contexts: [{ name: NODE_NAME, context: { cluster: "test", user: NODE_NAME } }],
      "current-context": NODE_NAME,
    }),
  );
}

/** Kills and deletes every container containerd still has (kubelet leaves them running when it stops). */
async function removeContainers(files: ReturnType<typeof nodeFiles>, ctrPath: string): Promise<void> {
  const record = readProcesses(files.node).containerd;
  if (!record || !isRunning(record)) return;
  const ctr = (args: string[]) =>
    run([ctrPath, "--address", files.containerdSocket, "-n", "k8s.io", ...args]);
  const ids = (await ctr(["containers", "list", "-q"]).catch(() => "")).split("\n").filter(Boolean);
  for (const id of ids) {
    await ctr(["tasks", "kill", "-s", "SIGKILL", id]).catch(() => {});
    await ctr(["tasks", "delete", "-f", id]).catch(() => {});
    await ctr(["containers", "delete", id]).catch(() => {});
  }
}

function procArgv(pid: number): string[] {
  try {
    return Deno.readTextFileSync(`/proc/${pid}/cmdline`).split("\0").filter(Boolean);
  } catch {
    return [];
  }
}

/** Pids (other than this process) whose command line mentions `text`. */
function processesMentioning(text: string): number[] {
  const pids: number[] = [];
  for (const entry of Deno.readDirSync("/proc")) {
    const pid = Number(entry.name);
    if (!Number.isInteger(pid) || pid === Deno.pid) continue;
    if (procArgv(pid).some((arg) => arg.includes(text))) pids.push(pid);
  }
  return pids;
}

/** The cgroup v1 hierarchies (and the v2 one of a hybrid setup) mounted under /sys/fs/cgroup. */
function cgroupHierarchies(): string[] {
  const text = Deno.readTextFileSync("/proc/self/mountinfo");
  return text.split("\n").map((line) => line.split(" ")).filter((f) => {
    const dash = f.indexOf("-");
    return dash > 0 && (f[dash + 1] === "cgroup" || f[dash + 1] === "cgroup2") &&
      f[4].startsWith("/sys/fs/cgroup");
  }).map((f) => f[4]);
}

/** Creates `name` in every hierarchy (kubelet requires its cgroupRoot to exist), cpusets filled in. */
function makeCgroup(name: string): void {
  for (const hierarchy of cgroupHierarchies()) {
    const path = join(hierarchy, name);
    Deno.mkdirSync(path, { recursive: true });
    for (const file of ["cpuset.cpus", "cpuset.mems"]) {
      try {
        Deno.writeTextFileSync(join(path, file), Deno.readTextFileSync(join(hierarchy, file)));
      } catch { /* not the cpuset hierarchy */ }
    }
  }
}

function cgroupDirs(name: string): string[] {
  return cgroupHierarchies().map((h) => join(h, name)).filter((path) => {
    try {
      return Deno.statSync(path).isDirectory;
    } catch {
      return false;
    }
  });
}

/** Removes `name` and every cgroup below it, deepest first (cgroup directories go with rmdir only). */
function removeCgroup(name: string): void {
  const rmTree = (path: string) => {
    for (const entry of Deno.readDirSync(path)) if (entry.isDirectory) rmTree(join(path, entry.name));
    Deno.removeSync(path);
  };
  for (const path of cgroupDirs(name)) {
    try {
      rmTree(path);
    } catch { /* a process is still inside; leftovers() reports it */ }
  }
}
