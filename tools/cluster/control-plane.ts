/**
 * A real Kubernetes control plane for tests, on 127.0.0.1 only: etcd, kube-apiserver (RBAC and Node
 * authorization, the default admission plugins plus NodeRestriction) and kube-controller-manager (all its
 * default controllers: garbage collector, service-account and token controllers, ...), with manifests/
 * applied by `kubectl apply -k` as an operator would.
 *
 * Everything lives in one directory (see {@link clusterFiles}); the processes outlive the process that
 * started them, and their pids and command lines are kept in DIR/cluster.json so that `down` (from any
 * process) stops exactly them. Ports are chosen free at start-up, so clusters can run side by side.
 */
import { join } from "node:path";
import { stringify } from "yaml";
import { type Binaries, findBinaries } from "./binaries.ts";
import { makePki, type Pki, pkiPaths } from "./pki.ts";
import { RestClient } from "./rest.ts";

const REPO = new URL("../../", import.meta.url).pathname;

/** The driver's ServiceAccount (manifests/rbac-driver.yaml). */
export const DRIVER_ACCOUNT = { namespace: "kube-system", name: "secrets-store-csi-driver" };

/** What lives in a cluster directory. The first three are the contract other checks rely on. */
export function clusterFiles(dir: string) {
  return {
    adminKubeconfig: join(dir, "admin.kubeconfig"),
    driverKubeconfig: join(dir, "driver.kubeconfig"),
    caCert: join(dir, "ca.crt"),
    controllerManagerKubeconfig: join(dir, "controller-manager.kubeconfig"),
    pki: join(dir, "pki"),
    etcdData: join(dir, "etcd"),
    logs: join(dir, "logs"),
    /** The driver's requests (who, verb, object, answer), one JSON event a line. */
    auditLog: join(dir, "logs", "audit.log"),
    auditPolicy: join(dir, "audit-policy.yaml"),
    state: join(dir, "cluster.json"),
  };
}

export type Component = "etcd" | "kube-apiserver" | "kube-controller-manager";
const COMPONENTS: Component[] = ["etcd", "kube-apiserver", "kube-controller-manager"];

/** One running component: how it was started, so it can be restarted exactly so. */
interface ProcessState {
  pid: number;
  argv: string[];
  log: string;
}

/** DIR/cluster.json */
interface ClusterState {
  server: string;
  etcdUrl: string;
  /** True when `up` made DIR itself: `down` then removes it too. */
  createdDir: boolean;
  processes: Partial<Record<Component, ProcessState>>;
}

/** Options of {@link clusterUp}. */
export interface UpOptions {
  /** Bound of the whole start-up (default 240 s: a loaded 2-core machine is slow to start an API server). */
  timeoutMs?: number;
  /** Progress lines (default: none). */
  log?: (line: string) => void;
}

/** A running cluster, as `up` leaves it. */
export interface Cluster {
  dir: string;
  /** https://127.0.0.1:PORT */
  server: string;
  /** http://127.0.0.1:PORT (etcd's client URL) */
  etcdUrl: string;
  files: ReturnType<typeof clusterFiles>;
}

/** A cluster `up` could not start. Its processes are stopped; the logs stay in DIR/logs. */
export class ClusterStartError extends Error {
  constructor(message: string, readonly logs: string) {
    super(`${message} (logs: ${logs})`);
    this.name = "ClusterStartError";
  }
}

function readState(dir: string): ClusterState | undefined {
  try {
    return JSON.parse(Deno.readTextFileSync(clusterFiles(dir).state)) as ClusterState;
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return undefined;
    throw err;
  }
}

function writeState(dir: string, state: ClusterState): void {
  Deno.writeTextFileSync(clusterFiles(dir).state, JSON.stringify(state, null, 2) + "\n");
}

/** The running cluster in `dir` (as `up` left it); throws when there is none. */
export function openCluster(dir: string): Cluster {
  const state = readState(dir);
  if (!state) throw new Error(`no cluster in ${dir}: start one with \`deno task cluster up --dir ${dir}\``);
  return { dir, server: state.server, etcdUrl: state.etcdUrl, files: clusterFiles(dir) };
}

/** An admin client (system:masters) of the cluster in `dir`. */
export function adminClient(dir: string): RestClient {
  const pki = pkiPaths(clusterFiles(dir).pki);
  return new RestClient({
    server: openCluster(dir).server,
    caCert: Deno.readTextFileSync(pki.caCert),
    cert: Deno.readTextFileSync(pki.adminCert),
    key: Deno.readTextFileSync(pki.adminKey),
  });
}

// ---------------------------------------------------------------------------------------------------
// processes

/** True while `pid` runs the component started for `dir` (not a recycled pid, not a zombie). */
function isOurs(pid: number, dir: string): boolean {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    if (stat.slice(stat.lastIndexOf(")") + 2).startsWith("Z")) return false;
    return Deno.readTextFileSync(`/proc/${pid}/cmdline`).includes(dir);
  } catch {
    return false;
  }
}

/** Children started by this process, so that stopping one also reaps it. */
const children = new Map<number, Deno.ChildProcess>();

/**
 * True while `pid` runs. A child of this process counts until its exit status arrives: right after the
 * fork its command line is still this process's, which `isOurs` would read as "exited".
 */
function isRunning(pid: number, dir: string): boolean {
  return children.has(pid) || isOurs(pid, dir);
}

/** Starts `argv` detached (it outlives this process), its stdout and stderr appended to `log`. */
function spawn(argv: string[], log: string): number {
  const child = new Deno.Command("sh", {
    args: ["-c", 'exec "$@" >>"$0" 2>&1', log, ...argv],
    stdin: "null",
    stdout: "null",
    stderr: "null",
    detached: true,
  }).spawn();
  child.unref();
  children.set(child.pid, child);
  child.status.finally(() => children.delete(child.pid));
  return child.pid;
}

/** SIGTERM, then SIGKILL after `graceMs`; resolves once the process is gone. */
async function stopProcess(pid: number, dir: string, graceMs = 10_000): Promise<void> {
  if (!isOurs(pid, dir)) return;
  const child = children.get(pid);
  try {
    Deno.kill(pid, "SIGTERM");
  } catch { /* gone already */ }
  const deadline = Date.now() + graceMs;
  while (isOurs(pid, dir) && Date.now() < deadline) await sleep(50);
  if (isOurs(pid, dir)) {
    try {
      Deno.kill(pid, "SIGKILL");
    } catch { /* gone already */ }
    while (isOurs(pid, dir)) await sleep(20);
  }
  // Reap it (an unref'd child's exit alone does not keep this process's event loop alive).
  child?.ref();
  await child?.status;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Ports the kernel handed out free just now (held until all are picked, so they differ). */
function freePorts(count: number): number[] {
  const listeners = Array.from({ length: count }, () => Deno.listen({ hostname: "127.0.0.1", port: 0 }));
  const ports = listeners.map((l) => (l.addr as Deno.NetAddr).port);
  for (const l of listeners) l.close();
  return ports;
}

function tail(path: string, lines = 15): string {
  try {
    return Deno.readTextFileSync(path).trimEnd().split("\n").slice(-lines).join("\n");
  } catch {
    return "(no log)";
  }
}

/**
 * Polls `probe` until it returns true, failing early when the component's process exits. The error names
 * the component, the bound and the last lines of its log.
 */
async function waitUntil(
  what: string,
  deadline: number,
  probe: () => Promise<boolean>,
  process?: { pid: number; dir: string; log: string },
): Promise<void> {
  let last = "";
  while (Date.now() < deadline) {
    if (process && !isRunning(process.pid, process.dir)) {
      throw new Error(`${what}: the process exited; the end of ${process.log}:\n${tail(process.log)}`);
    }
    try {
      if (await probe()) return;
    } catch (err) {
      last = err instanceof Error ? err.message : String(err);
    }
    await sleep(200);
  }
  const log = process ? `; the end of ${process.log}:\n${tail(process.log)}` : "";
  throw new Error(`${what} did not happen in time${last ? ` (last error: ${last})` : ""}${log}`);
}

// ---------------------------------------------------------------------------------------------------
// command lines

interface Ports {
  etcdClient: number;
  etcdPeer: number;
  apiserver: number;
}

function etcdArgs(bin: Binaries, files: ReturnType<typeof clusterFiles>, ports: Ports): string[] {
  const client = `http://127.0.0.1:${ports.etcdClient}`;
  const peer = `http://127.0.0.1:${ports.etcdPeer}`;
  return [
    bin.etcd,
    "--name=default",
    `--data-dir=${files.etcdData}`,
    `--listen-client-urls=${client}`,
    `--advertise-client-urls=${client}`,
    `--listen-peer-urls=${peer}`,
    `--initial-advertise-peer-urls=${peer}`,
    `--initial-cluster=default=${peer}`,
    // A throw-away test store on a shared disk: durability is not worth the fsync latency.
    "--unsafe-no-fsync=true",
    "--log-level=warn",
  ];
}

/** Metadata (never bodies) of the driver's requests, for tests that count them. */
const AUDIT_POLICY = `apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
  - level: Metadata
    users: ["system:serviceaccount:${DRIVER_ACCOUNT.namespace}:${DRIVER_ACCOUNT.name}"]
  - level: None
`;

function apiserverArgs(
  bin: Binaries,
  pki: Pki,
  files: ReturnType<typeof clusterFiles>,
  ports: Ports,
): string[] {
  return [
    bin.kubeApiserver,
    `--etcd-servers=http://127.0.0.1:${ports.etcdClient}`,
    "--bind-address=127.0.0.1",
    "--advertise-address=127.0.0.1",
    `--secure-port=${ports.apiserver}`,
    // Only read when no serving certificate is given; kept inside DIR all the same.
    `--cert-dir=${pki.dir}`,
    `--tls-cert-file=${pki.apiserverCert}`,
    `--tls-private-key-file=${pki.apiserverKey}`,
    `--client-ca-file=${pki.caCert}`,
    `--kubelet-client-certificate=${pki.kubeletClientCert}`,
    `--kubelet-client-key=${pki.kubeletClientKey}`,
    "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
    `--service-account-key-file=${pki.serviceAccountPub}`,
    `--service-account-signing-key-file=${pki.serviceAccountKey}`,
    "--service-cluster-ip-range=10.0.0.0/24",
    "--authorization-mode=Node,RBAC",
    "--enable-admission-plugins=NodeRestriction",
    "--allow-privileged=true",
    // The kubernetes Service's endpoint would be 127.0.0.1, which Endpoints validation refuses.
    "--endpoint-reconciler-type=none",
    `--audit-policy-file=${files.auditPolicy}`,
    `--audit-log-path=${files.auditLog}`,
    "--profiling=false",
    "--v=1",
  ];
}

function controllerManagerArgs(bin: Binaries, pki: Pki, files: ReturnType<typeof clusterFiles>): string[] {
  return [
    bin.kubeControllerManager,
    `--kubeconfig=${files.controllerManagerKubeconfig}`,
    // No HTTPS endpoint: nothing scrapes it, and a fixed port would clash between clusters.
    "--secure-port=0",
    "--leader-elect=false",
    "--use-service-account-credentials=true",
    `--service-account-private-key-file=${pki.serviceAccountKey}`,
    `--root-ca-file=${pki.caCert}`,
    `--cluster-signing-cert-file=${pki.caCert}`,
    `--cluster-signing-key-file=${pki.caKey}`,
    "--v=1",
  ];
}

/** A kubeconfig with the CA embedded and either a client certificate or a bearer token. */
function kubeconfig(
  server: string,
  caPem: string,
  user: string,
  auth: { cert: string; key: string } | { token: string },
): string {
  const b64 = (text: string) => btoa(text);
  const credentials = "token" in auth
    ? { token: auth.token }
    : { "client-certificate-data": b64(auth.cert), "client-key-data": b64(auth.key) };
  return stringify({
    apiVersion: "v1",
    kind: "Config",
    clusters: [{ name: "test", cluster: { server, "certificate-authority-data": b64(caPem) } }],
    users: [{ name: user, user: credentials }],
    contexts: [{ name: user, context: { cluster: "test", user } }],
    "current-context": user,
  });
}

async function run(argv: string[], log: string): Promise<void> {
  const file = await Deno.open(log, { append: true, create: true });
  try {
    const output = await new Deno.Command(argv[0], { args: argv.slice(1), stdin: "null" }).output();
    await file.write(output.stdout);
    await file.write(output.stderr);
    if (output.code !== 0) {
      throw new Error(
        `${argv.slice(0, 3).join(" ")} ... failed:\n${new TextDecoder().decode(output.stderr).trim()}`,
      );
    }
  } finally {
    file.close();
  }
}

// ---------------------------------------------------------------------------------------------------
// up, down, restart

/**
 * Starts a cluster in `dir` and returns once the API server is ready, manifests/ is applied and the
 * controller manager runs. Leftovers of an earlier cluster in `dir` (a crash, a missing `down`) are
 * stopped and removed first. On failure everything started is stopped, the logs stay.
 */
export async function clusterUp(dir: string, options: UpOptions = {}): Promise<Cluster> {
  const say = options.log ?? (() => {});
  const deadline = Date.now() + (options.timeoutMs ?? 240_000);
  const bin = findBinaries();
  let createdDir = false;
  try {
    Deno.statSync(dir);
  } catch {
    createdDir = true;
  }
  if (!createdDir) createdDir = (await clusterDown(dir, { keepDir: true })).createdDir;
  const files = clusterFiles(dir);
  await Deno.mkdir(files.logs, { recursive: true });
  const state: ClusterState = { server: "", etcdUrl: "", createdDir, processes: {} };
  writeState(dir, state);
  try {
    const pki = await makePki(files.pki);
    await Deno.copyFile(pki.caCert, files.caCert);
    await Deno.writeTextFile(files.auditPolicy, AUDIT_POLICY);
    // A port taken between freePorts() and the bind makes a component exit at once: pick again.
    for (let attempt = 1;; attempt++) {
      const [etcdClient, etcdPeer, apiserver] = freePorts(3);
      const ports = { etcdClient, etcdPeer, apiserver };
      state.server = `https://127.0.0.1:${apiserver}`;
      state.etcdUrl = `http://127.0.0.1:${etcdClient}`;
      try {
        await startComponent(dir, state, "etcd", etcdArgs(bin, files, ports), deadline);
        await startComponent(dir, state, "kube-apiserver", apiserverArgs(bin, pki, files, ports), deadline);
        break;
      } catch (err) {
        const inUse = COMPONENTS.some((c) =>
          /address already in use/.test(tail(join(files.logs, `${c}.log`), 40))
        );
        if (!inUse || attempt === 3) throw err;
        say(`a port was taken meanwhile; trying other ports (attempt ${attempt + 1})`);
        await stopAll(dir, state);
        await Deno.remove(files.etcdData, { recursive: true }).catch(() => {});
        for (const c of COMPONENTS) await Deno.remove(join(files.logs, `${c}.log`)).catch(() => {});
      }
    }
    say(`API server ready at ${state.server}`);
    const caPem = await Deno.readTextFile(pki.caCert);
    const read = (path: string) => Deno.readTextFile(path);
    await Deno.writeTextFile(
      files.adminKubeconfig,
      kubeconfig(state.server, caPem, "admin", {
        cert: await read(pki.adminCert),
        key: await read(pki.adminKey),
      }),
    );
    await Deno.writeTextFile(
      files.controllerManagerKubeconfig,
      kubeconfig(state.server, caPem, "system:kube-controller-manager", {
        cert: await read(pki.controllerManagerCert),
        key: await read(pki.controllerManagerKey),
      }),
    );

    // manifests/ before the controller manager: its garbage collector then watches the CRDs from the start.
    const applyLog = join(files.logs, "kubectl.log");
    const kubectl = [bin.kubectl, `--kubeconfig=${files.adminKubeconfig}`];
    await run([...kubectl, "apply", "-k", join(REPO, "manifests")], applyLog);
    await run([
      ...kubectl,
      "wait",
      "--for=condition=Established",
      `--timeout=${Math.max(1, Math.round((deadline - Date.now()) / 1000))}s`,
      "crd/secretproviderclasses.secrets-store.csi.x-k8s.io",
      "crd/secretproviderclasspodstatuses.secrets-store.csi.x-k8s.io",
    ], applyLog);
    say("manifests/ applied");

    const admin = adminClient(dir);
    try {
      const token = await admin.post<{ status: { token: string } }>(
        `/api/v1/namespaces/${DRIVER_ACCOUNT.namespace}/serviceaccounts/${DRIVER_ACCOUNT.name}/token`,
        {
          apiVersion: "authentication.k8s.io/v1",
          kind: "TokenRequest",
          spec: { expirationSeconds: 7 * 24 * 3600 },
        },
      );
      await Deno.writeTextFile(
        files.driverKubeconfig,
        kubeconfig(state.server, caPem, `${DRIVER_ACCOUNT.namespace}:${DRIVER_ACCOUNT.name}`, {
          token: token.status.token,
        }),
      );

      await startComponent(
        dir,
        state,
        "kube-controller-manager",
        controllerManagerArgs(bin, pki, files),
        deadline,
      );
      const controllerManager = processOf(dir, state, "kube-controller-manager");
      // The service-account controller creates every namespace's `default` account: pods need it.
      await waitUntil(
        "the controller manager's first ServiceAccount (default/default)",
        deadline,
        async () => (await admin.find("/api/v1/namespaces/default/serviceaccounts/default")) !== undefined,
        controllerManager,
      );
      // The garbage collector watches every resource (the CRDs' too) before it collects anything.
      await waitUntil(
        "the garbage collector's start",
        deadline,
        async () =>
          (await Deno.readTextFile(controllerManager.log)).includes("Proceeding to collect garbage"),
        controllerManager,
      );
    } finally {
      admin.close();
    }
    say("controller manager running");
    return { dir, server: state.server, etcdUrl: state.etcdUrl, files };
  } catch (err) {
    await stopAll(dir, state);
    throw new ClusterStartError(
      `the test cluster in ${dir} did not start: ${err instanceof Error ? err.message : String(err)}`,
      files.logs,
    );
  }
}

function processOf(dir: string, state: ClusterState, component: Component) {
  const p = state.processes[component]!;
  return { pid: p.pid, dir, log: p.log };
}

/** Starts one component (recorded in the state file before anything waits) and waits for it to be ready. */
async function startComponent(
  dir: string,
  state: ClusterState,
  component: Component,
  argv: string[],
  deadline: number,
): Promise<void> {
  const log = join(clusterFiles(dir).logs, `${component}.log`);
  state.processes[component] = { pid: spawn(argv, log), argv, log };
  writeState(dir, state);
  await waitReady(dir, state, component, deadline);
}

async function waitReady(dir: string, state: ClusterState, component: Component, deadline: number) {
  const process = processOf(dir, state, component);
  if (component === "etcd") {
    await waitUntil("etcd's /health", deadline, async () => {
      const response = await fetch(`${state.etcdUrl}/health`, { signal: AbortSignal.timeout(2_000) });
      return response.ok && (await response.json()).health === "true";
    }, process);
  } else if (component === "kube-apiserver") {
    const admin = adminClient(dir);
    try {
      await waitUntil("the API server's /readyz", deadline, async () => {
        await admin.request("GET", "/readyz", undefined, { signal: AbortSignal.timeout(5_000) });
        return true;
      }, process);
    } finally {
      admin.close();
    }
  }
}

async function stopAll(dir: string, state: ClusterState): Promise<void> {
  // Dependents first: the controller manager, then the API server, then etcd.
  for (const component of [...COMPONENTS].reverse()) {
    const p = state.processes[component];
    if (p) await stopProcess(p.pid, dir);
  }
}

/**
 * Stops the cluster in `dir` and removes everything `up` wrote there (and `dir` itself when `up` made
 * it, unless `keepDir`; `keepLogs` keeps DIR/logs). A directory without a cluster is left as it is.
 */
export async function clusterDown(
  dir: string,
  options: { keepDir?: boolean; keepLogs?: boolean } = {},
): Promise<{ createdDir: boolean }> {
  const state = readState(dir);
  if (!state) return { createdDir: false };
  await stopAll(dir, state);
  const files = clusterFiles(dir);
  if (state.createdDir && !options.keepDir && !options.keepLogs) {
    await Deno.remove(dir, { recursive: true });
  } else {
    for (
      const path of [
        files.adminKubeconfig,
        files.driverKubeconfig,
        files.caCert,
        files.controllerManagerKubeconfig,
        files.auditPolicy,
        files.pki,
        files.etcdData,
        ...(options.keepLogs ? [] : [files.logs]),
        files.state,
      ]
    ) {
      await Deno.remove(path, { recursive: true }).catch((err) => {
        if (!(err instanceof Deno.errors.NotFound)) throw err;
      });
    }
  }
  return { createdDir: state.createdDir };
}

/**
 * Stops one component of a running cluster and starts it again with the same command line (and so the
 * same port and data); resolves once it is ready. Only for clusters a test owns: the others' requests fail
 * meanwhile.
 */
export async function restartComponent(
  dir: string,
  component: Component,
  timeoutMs = 120_000,
): Promise<void> {
  const state = readState(dir);
  const p = state?.processes[component];
  if (!state || !p) throw new Error(`no ${component} in ${dir}`);
  await stopProcess(p.pid, dir);
  await startComponent(dir, state, component, p.argv, Date.now() + timeoutMs);
}

/** Compacts etcd's history up to its current revision (what the API server does every 5 minutes). */
export async function compactEtcd(dir: string): Promise<number> {
  const { etcdUrl } = openCluster(dir);
  const call = async (path: string, body: unknown) => {
    const response = await fetch(`${etcdUrl}${path}`, { method: "POST", body: JSON.stringify(body) });
    if (!response.ok) throw new Error(`etcd ${path}: HTTP ${response.status}: ${await response.text()}`);
    return await response.json();
  };
  // A range over one key that need not exist returns the store's current revision in its header.
  const range = await call("/v3/kv/range", { key: btoa("compaction-probe") });
  const revision = Number(range.header.revision);
  await call("/v3/kv/compaction", { revision: String(revision), physical: true });
  return revision;
}
