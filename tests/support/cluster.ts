/**
 * The real control plane for tests (tools/cluster/): `deno task test` starts one cluster for the whole run
 * (`deno task cluster run -- deno test ...`) and passes its directory in $SSCSI_CLUSTER_DIR; each test
 * works in a namespace of its own and a node name of its own, so tests run in parallel on one cluster.
 * A test that must stop or restart a component (the API server, etcd) starts a private cluster instead.
 *
 * To run one test file by hand:
 *   deno task cluster up --dir /tmp/c && SSCSI_CLUSTER_DIR=/tmp/c deno test -A tests/cluster/x_test.ts
 */
import { parse } from "yaml";
import { CLUSTER_DIR_VARIABLE } from "../../tools/cluster/main.ts";
import {
  adminClient,
  type Cluster,
  clusterDown,
  clusterUp,
  DRIVER_ACCOUNT,
  openCluster,
} from "../../tools/cluster/control-plane.ts";
import { type KubeObject, RestClient, RestError, restPath } from "../../tools/cluster/rest.ts";

export { type KubeObject, RestClient, RestError, restPath };
export { DRIVER_ACCOUNT };

/** The driver's user name as the API server authenticates its token. */
export const DRIVER_USER = `system:serviceaccount:${DRIVER_ACCOUNT.namespace}:${DRIVER_ACCOUNT.name}`;

/** A cluster as tests use it. */
export interface TestCluster {
  cluster: Cluster;
  /** system:masters */
  admin: RestClient;
  /** The driver's ServiceAccount (its token from driver.kubeconfig). */
  driver: RestClient;
  /** DIR/driver.kubeconfig, what the driver under test loads. */
  driverKubeconfig: string;
}

function connect(cluster: Cluster): TestCluster {
  const kubeconfig = parse(Deno.readTextFileSync(cluster.files.driverKubeconfig)) as {
    users: { user: { token: string } }[];
  };
  return {
    cluster,
    admin: adminClient(cluster.dir),
    driver: new RestClient({
      server: cluster.server,
      caCert: Deno.readTextFileSync(cluster.files.caCert),
      token: kubeconfig.users[0].user.token,
    }),
    driverKubeconfig: cluster.files.driverKubeconfig,
  };
}

/** The run's shared cluster; fails with one sentence saying how to start it when there is none. */
export function sharedCluster(): TestCluster {
  const dir = Deno.env.get(CLUSTER_DIR_VARIABLE);
  if (!dir) {
    throw new Error(
      `this test needs the test cluster: run it through \`deno task test\`, or start one with \`deno task cluster up --dir DIR\` and set ${CLUSTER_DIR_VARIABLE}=DIR`,
    );
  }
  return connect(openCluster(dir));
}

/** A cluster of the test's own (for tests that restart its components), removed on dispose. */
export async function privateCluster(): Promise<TestCluster & AsyncDisposable> {
  const dir = await Deno.makeTempDir({ prefix: "sscsi-private-cluster-" });
  await Deno.remove(dir); // `up` makes it, so `down` removes it
  const test = connect(await clusterUp(dir));
  return {
    ...test,
    async [Symbol.asyncDispose]() {
      test.admin.close();
      test.driver.close();
      await clusterDown(dir);
    },
  };
}

/** A fresh namespace (with its `default` ServiceAccount, which pods need), deleted on dispose. */
export async function testNamespace(
  admin: RestClient,
  prefix = "t",
): Promise<{ name: string } & AsyncDisposable> {
  const name = `${prefix}-${crypto.randomUUID().slice(0, 8)}`;
  await admin.post("/api/v1/namespaces", { apiVersion: "v1", kind: "Namespace", metadata: { name } });
  await eventually(
    `the default ServiceAccount of namespace ${name}`,
    async () => (await admin.find(`/api/v1/namespaces/${name}/serviceaccounts/default`)) !== undefined,
  );
  return {
    name,
    async [Symbol.asyncDispose]() {
      await admin.delete(`/api/v1/namespaces/${name}`).catch(() => {});
    },
  };
}

/** Polls `probe` until it returns something truthy, for at most `timeoutMs` (a real controller is slower). */
export async function eventually<T>(
  what: string,
  probe: () => Promise<T | undefined | null | false> | T | undefined | null | false,
  timeoutMs = 30_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const value = await probe();
      if (value) return value;
    } catch (err) {
      last = err;
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  const detail = last instanceof Error ? ` (last error: ${last.message})` : "";
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${detail}`);
}

/** Creates a Pod (never scheduled: no scheduler runs; the driver needs only its name, uid and owners). */
export function createPod(
  admin: RestClient,
  namespace: string,
  name: string,
  extra: { ownerReferences?: KubeObject["metadata"]["ownerReferences"]; serviceAccountName?: string } = {},
): Promise<KubeObject> {
  return admin.create("pods", {
    apiVersion: "v1",
    kind: "Pod",
    metadata: {
      name,
      namespace,
      ...(extra.ownerReferences ? { ownerReferences: extra.ownerReferences } : {}),
    },
    spec: {
      ...(extra.serviceAccountName ? { serviceAccountName: extra.serviceAccountName } : {}),
      containers: [{ name: "app", image: "registry.invalid/app:1" }],
    },
  });
}

/** Creates a SecretProviderClass for the test provider (written as `version`, v1 by default). */
export function createSpc(
  admin: RestClient,
  namespace: string,
  name: string,
  spec: { parameters?: Record<string, string>; secretObjects?: unknown[]; provider?: string } = {},
  version = "v1",
): Promise<KubeObject> {
  return admin.create("secretproviderclasses", {
    apiVersion: `secrets-store.csi.x-k8s.io/${version}`,
    kind: "SecretProviderClass",
    metadata: { name, namespace },
    spec: { provider: "test", parameters: { a: "b" }, ...spec },
  });
}

/** The decoded data of a Secret, or undefined while there is none. */
export async function secretData(
  admin: RestClient,
  namespace: string,
  name: string,
): Promise<Record<string, string> | undefined> {
  const secret = await admin.find(restPath("v1", "secrets", namespace, name));
  if (secret === undefined) return undefined;
  const data = (secret.data ?? {}) as Record<string, string>;
  const decode = (b64: string) =>
    new TextDecoder().decode(Uint8Array.from(atob(b64), (c) => c.charCodeAt(0)));
  return Object.fromEntries(Object.entries(data).map(([k, v]) => [k, decode(v)]));
}

/** One line of the cluster's audit log (tools/cluster records the driver's requests). */
export interface AuditEvent {
  verb: string;
  requestURI: string;
  userAgent?: string;
  user: { username: string };
  objectRef?: { resource?: string; namespace?: string; name?: string; apiGroup?: string };
  responseStatus?: { code?: number };
}

/** The audit events of requests from the driver running as `nodeId` (its user agent names the node). */
export async function driverRequests(cluster: Cluster, nodeId: string): Promise<AuditEvent[]> {
  const text = await Deno.readTextFile(cluster.files.auditLog);
  return text.split("\n").filter((line) => line.includes(`node/${nodeId}`)).map((line) =>
    JSON.parse(line) as AuditEvent
  ).filter((e) => e.userAgent?.endsWith(`node/${nodeId}`));
}
