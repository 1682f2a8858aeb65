/**
 * End to end on a real node (`deno task test:node`): a real control plane (tools/cluster), kubelet,
 * containerd and the registrar run Pods whose inline `secrets-store.csi.k8s.io` volumes this driver mounts.
 * The tests run in order against one node and one cluster (start-up is the slow part); each one names the
 * Pods it makes. A missing binary or package fails the first test with the command that builds it.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { mountsUnder } from "../../lib/mount/mountinfo.ts";
import { requireRoot } from "../support/root.ts";
import { TestProvider } from "../support/test-provider.ts";
import {
  KUBELET_SYNC_SECONDS,
  leftovers,
  type Node,
  nodeCgroupRoot,
  ROTATION_POLL_SECONDS,
  startNode,
  stopNode,
} from "./node.ts";
import { run, tail } from "./processes.ts";

const NS = "default";
const SPC_API = "secrets-store.csi.x-k8s.io/v1";
const NODE_LABEL = "internal.secrets-store.csi.k8s.io/node-name";
const TEST_IMAGE = "localhost/sscsi-node/busybox:1";
const TOKEN_AUDIENCE = "sscsi-node-test";

const options = { sanitizeOps: false, sanitizeResources: false, sanitizeExit: false };

let dir = "";
let node: Node | undefined;
let recorder: TestProvider | undefined;
let cgroupRoot = "";

function theNode(): Node {
  if (!node) throw new Error("the node did not start (see the first test)");
  return node;
}

// ---------------------------------------------------------------------------------------------------
// helpers

/** `deno task cluster up|down --dir DIR`, as an operator runs it (its processes are not ours then). */
async function cluster(verb: "up" | "down"): Promise<void> {
  const cli = new URL("../../tools/cluster/main.ts", import.meta.url).pathname;
  await run([Deno.execPath(), "run", "-A", cli, verb, "--dir", dir]);
}

async function apply(object: unknown): Promise<void> {
  await theNode().kubectl(["apply", "-f", "-"], JSON.stringify(object));
}

// deno-lint-ignore no-explicit-any
async function get(kind: string, name: string, namespace = NS): Promise<any | undefined> {
  const out = await theNode().kubectl([
    "get",
    kind,
    name,
    "-n",
    namespace,
    "-o",
    "json",
    "--ignore-not-found",
  ]);
  return out === "" ? undefined : JSON.parse(out);
}

async function exec(pod: string, script: string): Promise<string> {
  return await theNode().kubectl(["exec", "-n", NS, pod, "--", "sh", "-c", script]);
}

async function waitFor<T>(what: string, timeoutMs: number, probe: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) {
      throw new Error(
        `timed out after ${timeoutMs / 1000} s waiting for ${what}\n--- driver log ---\n` +
          tail(join(theNode().files.logs, "driver.log"), 20) + "\n--- kubelet log ---\n" +
          tail(join(theNode().files.logs, "kubelet.log"), 20),
      );
    }
    await new Promise((r) => setTimeout(r, 250));
  }
}

async function waitRunning(pod: string, timeoutMs = 90_000) {
  return await waitFor(`pod ${pod} to run`, timeoutMs, async () => {
    const p = await get("pod", pod);
    return p?.status?.phase === "Running" &&
        p.status.containerStatuses?.every((c: { ready: boolean }) => c.ready)
      ? p
      : undefined;
  });
}

async function waitGone(kind: string, name: string, timeoutMs = 90_000): Promise<void> {
  await waitFor(
    `${kind} ${name} to be deleted`,
    timeoutMs,
    async () => (await get(kind, name)) === undefined,
  );
}

/** One object of the local provider: a path under its root, the file name in the mount, a mode. */
interface LocalObject {
  objectName: string;
  objectAlias?: string;
  mode?: string;
}

/** A SecretProviderClass of the local provider serving `objects`. */
function localClass(name: string, objects: LocalObject[], extra = {}) {
  const yaml = objects.map((o) =>
    `- objectName: ${o.objectName}\n` + (o.objectAlias ? `  objectAlias: ${o.objectAlias}\n` : "") +
    (o.mode ? `  mode: "${o.mode}"\n` : "")
  ).join("");
  return {
    apiVersion: SPC_API,
    kind: "SecretProviderClass",
    metadata: { name, namespace: NS },
    spec: { provider: "local", parameters: { objects: yaml }, ...extra },
  };
}

/** A Pod on the node that sleeps, with the class `spc` mounted read-only at /mnt/secrets. */
function podWithSecrets(name: string, spc: string, command = "sleep 3600", extra = {}) {
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name, namespace: NS },
    spec: {
      nodeName: theNode().name,
      hostNetwork: true,
      dnsPolicy: "Default",
      terminationGracePeriodSeconds: 1,
      containers: [{
        name: "main",
        image: TEST_IMAGE,
        imagePullPolicy: "Never",
        command: ["sh", "-c", command],
        volumeMounts: [{ name: "secrets", mountPath: "/mnt/secrets", readOnly: true }],
        ...extra,
      }],
      volumes: [{
        name: "secrets",
        csi: {
          driver: "secrets-store.csi.k8s.io",
          readOnly: true,
          volumeAttributes: { secretProviderClass: spc },
        },
      }],
    },
  };
}

async function writeSecret(path: string, contents: string): Promise<void> {
  const file = join(theNode().files.secrets, path);
  await Deno.mkdir(join(file, ".."), { recursive: true });
  // Replace, never rewrite in place: the provider must never read half a file either.
  await Deno.writeTextFile(`${file}.tmp`, contents);
  await Deno.rename(`${file}.tmp`, file);
}

/** Host mounts of a Pod's volumes (its tmpfs under kubelet's pods directory). */
async function podMounts(uid: string) {
  return await mountsUnder(join(theNode().files.kubeletRoot, "pods", uid));
}

// ---------------------------------------------------------------------------------------------------

Deno.test(
  "node: a control plane and a real node start, and kubelet registers the driver",
  options,
  async () => {
    requireRoot();
    const started = Date.now();
    dir = await Deno.makeTempDir({ prefix: "sscsi-n-" });
    await cluster("up");
    const clusterSeconds = (Date.now() - started) / 1000;
    node = await startNode(dir);
    cgroupRoot = nodeCgroupRoot(dir);
    recorder = await TestProvider.start(node.files.providers, "recorder");
    console.log(
      `start-up: control plane ${clusterSeconds.toFixed(1)} s, node ${node.startupSeconds.toFixed(1)} s`,
    );
  },
);

Deno.test(
  "node (a): a Pod with an inline volume runs and reads its files with their modes",
  options,
  async () => {
    await writeSecret("app/username", "admin");
    await writeSecret("app/password", "hunter2");
    await apply(localClass("app-secrets", [
      { objectName: "app/username", objectAlias: "username" },
      { objectName: "app/password", objectAlias: "password", mode: "0400" },
    ], {
      secretObjects: [{
        secretName: "app-synced",
        type: "Opaque",
        data: [{ objectName: "username", key: "username" }, { objectName: "password", key: "password" }],
      }],
    }));
    await apply(podWithSecrets("app", "app-secrets"));
    await waitRunning("app");

    const listing = await exec(
      "app",
      'cd /mnt/secrets && for f in username password; do echo "$f $(stat -L -c %a $f) $(cat $f)"; done',
    );
    assert.equal(listing, "username 644 admin\npassword 400 hunter2");
    const mount = await exec("app", "grep ' /mnt/secrets ' /proc/mounts");
    assert.match(mount, /^tmpfs \/mnt\/secrets tmpfs ro[ ,]/);
  },
);

Deno.test(
  "node (b): the SPCPS and the synced Secret exist, owned as upstream owns them; a Pod uses the Secret",
  options,
  async () => {
    const pod = await get("pod", "app");
    const status = await waitFor(
      "the SecretProviderClassPodStatus of app",
      30_000,
      () => get("secretproviderclasspodstatus", "app-default-app-secrets"),
    );
    assert.equal(status.metadata.labels[NODE_LABEL], theNode().name);
    assert.deepEqual(
      status.metadata.ownerReferences.map((
        o: Record<string, unknown>,
      ) => [o.apiVersion, o.kind, o.name, o.uid]),
      [["v1", "Pod", "app", pod.metadata.uid]],
    );
    assert.equal(status.status.podName, "app");
    assert.equal(status.status.secretProviderClassName, "app-secrets");
    assert.equal(status.status.mounted, true);
    assert.match(
      status.status.targetPath,
      new RegExp(`/pods/${pod.metadata.uid}/volumes/kubernetes.io~csi/secrets/mount$`),
    );
    assert.deepEqual(
      status.status.objects.map((o: { id: string }) => o.id),
      ["app/password", "app/username"],
    );

    const secret = await waitFor("the synced Secret app-synced", 60_000, () => get("secret", "app-synced"));
    assert.equal(secret.metadata.labels["secrets-store.csi.k8s.io/managed"], "true");
    assert.equal(secret.type, "Opaque");
    assert.equal(atob(secret.data.username), "admin");
    assert.equal(atob(secret.data.password), "hunter2");
    // A Pod without owners: upstream makes the SPCPS the Secret's owner.
    assert.deepEqual(
      secret.metadata.ownerReferences.map((
        o: Record<string, unknown>,
      ) => [o.apiVersion, o.kind, o.name, o.uid]),
      [[SPC_API, "SecretProviderClassPodStatus", "app-default-app-secrets", status.metadata.uid]],
    );

    await apply(podWithSecrets("env-user", "app-secrets", "sleep 3600", {
      env: [{ name: "DB_USER", valueFrom: { secretKeyRef: { name: "app-synced", key: "username" } } }],
    }));
    await waitRunning("env-user");
    assert.equal(await exec("env-user", "echo $DB_USER"), "admin");
  },
);

Deno.test(
  "node (c): with rotation on, a changed secret appears in the running container atomically",
  options,
  async () => {
    // Two files that always change together; the container reads both through one resolution of ..data
    // (kubelet's AtomicWriter layout) as fast as it can and counts pairs that do not match.
    const value = (version: number) => `v${version}-${String(version).repeat(4000)}`;
    await writeSecret("pair/a", value(1));
    await writeSecret("pair/b", value(1));
    await apply(localClass("pair", [
      { objectName: "pair/a", objectAlias: "a" },
      { objectName: "pair/b", objectAlias: "b" },
    ]));
    const reader = [
      "reads=0; mixes=0",
      "while true; do",
      "  d=$(readlink /mnt/secrets/..data) || continue",
      "  a=$(cat /mnt/secrets/$d/a 2>/dev/null) || continue",
      "  b=$(cat /mnt/secrets/$d/b 2>/dev/null) || continue",
      "  reads=$((reads+1))",
      '  if [ "$a" != "$b" ]; then mixes=$((mixes+1)); fi',
      '  echo "$reads $mixes ${a%%-*} ${b%%-*}" > /tmp/state.new && mv /tmp/state.new /tmp/state',
      "done",
    ].join("\n");
    await apply(podWithSecrets("rotating", "pair", reader));
    await waitRunning("rotating");
    await waitFor(
      "the reader to read v1",
      30_000,
      async () => / v1 v1$/.test(await exec("rotating", "cat /tmp/state")),
    );

    const changed = Date.now();
    await writeSecret("pair/a", value(2));
    await writeSecret("pair/b", value(2));
    const limitMs = 2 * ROTATION_POLL_SECONDS * 1000;
    const state = await waitFor("v2 inside the container", limitMs, async () => {
      const s = await exec("rotating", "cat /tmp/state");
      return / v2 v2$/.test(s) ? s : undefined;
    });
    const seconds = (Date.now() - changed) / 1000;
    console.log(
      `rotation visible in the container after ${seconds.toFixed(1)} s (limit ${limitMs / 1000} s)`,
    );
    // Keep reading a while after the swap too.
    await new Promise((r) => setTimeout(r, 2_000));
    const [reads, mixes] = (await exec("rotating", "cat /tmp/state")).split(" ").map(Number);
    assert.ok(reads > Number(state.split(" ")[0]), "the reader kept reading");
    assert.equal(mixes, 0, `the container saw ${mixes} mixed pairs in ${reads} reads`);
  },
);

Deno.test(
  "node (d): deleting a Pod unmounts and removes its volume; the SPCPS and the Secret are collected",
  options,
  async () => {
    const uid = (await get("pod", "app")).metadata.uid;
    assert.equal((await podMounts(uid)).filter((m) => m.fsType === "tmpfs").length >= 1, true);
    await theNode().kubectl(["delete", "pod", "-n", NS, "app", "env-user", "--wait=false"]);
    await waitGone("pod", "app");
    assert.deepEqual(await podMounts(uid), []);
    const volume = join(theNode().files.kubeletRoot, "pods", uid, "volumes/kubernetes.io~csi/secrets");
    await waitFor(
      `kubelet to remove ${volume}`,
      30_000,
      () => Deno.stat(volume).then(() => false, () => true),
    );
    await waitGone("secretproviderclasspodstatus", "app-default-app-secrets", 60_000);
    await waitGone("secret", "app-synced", 60_000);
  },
);

Deno.test(
  "node (e): a Pod whose class is missing waits with an Event naming it, and starts once it exists",
  options,
  async () => {
    await writeSecret("late/token", "late-value");
    await apply(podWithSecrets("waiting", "late-class"));
    const event = await waitFor("a FailedMount event naming late-class", 60_000, async () => {
      const events = JSON.parse(
        await theNode().kubectl([
          "get",
          "events",
          "-n",
          NS,
          "--field-selector",
          "involvedObject.name=waiting",
          "-o",
          "json",
        ]),
      );
      return events.items.find((e: { reason: string; message: string }) =>
        e.reason === "FailedMount" && e.message.includes("late-class")
      );
    });
    console.log(`event: ${event.message}`);
    const pod = await get("pod", "waiting");
    assert.equal(pod.status.phase, "Pending");
    assert.equal(
      pod.status.containerStatuses?.[0]?.state?.waiting?.reason ?? "ContainerCreating",
      "ContainerCreating",
    );

    await apply(localClass("late-class", [{ objectName: "late/token", objectAlias: "token" }]));
    await waitRunning("waiting", 150_000);
    assert.equal(await exec("waiting", "cat /mnt/secrets/token"), "late-value");
  },
);

Deno.test(
  "node (f): the CSIDriver's tokenRequests tokens reach the provider in the MountRequest",
  options,
  async () => {
    await theNode().kubectl([
      "patch",
      "csidriver",
      "secrets-store.csi.k8s.io",
      "--type=merge",
      "-p",
      JSON.stringify({ spec: { tokenRequests: [{ audience: TOKEN_AUDIENCE }] } }),
    ]);
    await apply({
      apiVersion: SPC_API,
      kind: "SecretProviderClass",
      metadata: { name: "recorded", namespace: NS },
      spec: { provider: "recorder", parameters: { case: "tokens" } },
    });
    // kubelet reads CSIDriver objects through an informer: wait until a Pod's mount carries the token.
    const before = recorder!.mountRequests.length;
    await apply(podWithSecrets("token-user", "recorded"));
    await waitRunning("token-user");
    const pod = await get("pod", "token-user");
    const request = recorder!.mountRequests.slice(before).find((r) =>
      JSON.parse(r.attributes)["csi.storage.k8s.io/pod.uid"] === pod.metadata.uid
    );
    assert.ok(request, "the provider got the Pod's MountRequest");
    const attributes = JSON.parse(request.attributes);
    const tokens = JSON.parse(attributes["csi.storage.k8s.io/serviceAccount.tokens"]);
    const token = tokens[TOKEN_AUDIENCE]?.token as string;
    assert.ok(token, `no token for ${TOKEN_AUDIENCE} in ${Object.keys(tokens)}`);
    const claims = JSON.parse(atob(token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/")));
    assert.deepEqual(claims.aud, [TOKEN_AUDIENCE]);
    assert.equal(claims.sub, "system:serviceaccount:default:default");
    assert.equal(claims["kubernetes.io"].pod.uid, pod.metadata.uid);
    assert.equal(attributes["csi.storage.k8s.io/serviceAccount.name"], "default");
    assert.equal(await exec("token-user", "cat /mnt/secrets/secret"), "s3cr3t");
  },
);

Deno.test(
  "node (g): restarting kubelet, then the driver, keeps volumes mounted and Pods running, with no rotation storm",
  options,
  async () => {
    const pods = ["rotating", "waiting", "token-user"];
    const before = await Promise.all(pods.map((p) => get("pod", p)));
    const mountIds = async () =>
      (await Promise.all(before.map((p) => podMounts(p.metadata.uid)))).map((ms) =>
        ms.filter((m) => m.mountPoint.includes("/volumes/kubernetes.io~csi/")).map((m) => m.mountId)
      );
    const mountsBefore = await mountIds();
    assert.ok(
      mountsBefore.every((ids) => ids.length === 1),
      `one tmpfs per Pod: ${JSON.stringify(mountsBefore)}`,
    );
    const calls = () =>
      recorder!.mountRequests.filter((r) =>
        JSON.parse(r.attributes)["csi.storage.k8s.io/pod.name"] === "token-user"
      ).length;
    const callsBefore = calls();
    const windowStarted = Date.now();

    await theNode().restart("kubelet");
    await waitFor("the node to be Ready again", 90_000, async () => {
      const n = JSON.parse(await theNode().kubectl(["get", "node", theNode().name, "-o", "json"]));
      const ready = n.status.conditions.find((c: { type: string }) => c.type === "Ready");
      return ready?.status === "True" && Date.parse(ready.lastHeartbeatTime) > windowStarted;
    });
    await new Promise((r) => setTimeout(r, 3 * KUBELET_SYNC_SECONDS * 1000));
    await theNode().restart("driver");
    await new Promise((r) => setTimeout(r, 3 * KUBELET_SYNC_SECONDS * 1000));

    const after = await Promise.all(pods.map((p) => get("pod", p)));
    for (const [i, pod] of after.entries()) {
      assert.equal(pod.metadata.uid, before[i].metadata.uid);
      assert.equal(pod.status.phase, "Running", `${pods[i]} runs`);
      const [was, is] = [before[i], pod].map((p) => p.status.containerStatuses[0]);
      assert.equal(is.restartCount, 0, `${pods[i]}'s container did not restart`);
      assert.equal(is.state.running.startedAt, was.state.running.startedAt);
    }
    assert.deepEqual(await mountIds(), mountsBefore, "the same tmpfs mounts, not remounted");
    assert.equal(await exec("token-user", "cat /mnt/secrets/secret"), "s3cr3t");

    // kubelet republishes every sync; the driver may ask the provider at most once per poll interval.
    const windowSeconds = (Date.now() - windowStarted) / 1000;
    const allowed = Math.ceil(windowSeconds / ROTATION_POLL_SECONDS) + 1;
    const made = calls() - callsBefore;
    console.log(
      `provider calls for one volume over ${
        windowSeconds.toFixed(0)
      } s with two restarts: ${made} (at most ${allowed})`,
    );
    assert.ok(made <= allowed, `${made} provider calls in ${windowSeconds.toFixed(0)} s: a rotation storm`);
  },
);

/** `pod` as uid 1000 / gid 1000 with `fsGroup` (kubelet delegates it: the driver has VOLUME_MOUNT_GROUP). */
function asNonRoot<T extends { spec: Record<string, unknown> }>(pod: T, fsGroup: number): T {
  return { ...pod, spec: { ...pod.spec, securityContext: { runAsUser: 1000, runAsGroup: 1000, fsGroup } } };
}

Deno.test(
  "node (h): a non-root Pod reads a 0640 secret through its fsGroup; a Pod with another fsGroup cannot",
  options,
  async () => {
    await writeSecret("shared/key", "k3y");
    await apply(
      localClass("group-secrets", [{ objectName: "shared/key", objectAlias: "key", mode: "0640" }]),
    );
    await apply(asNonRoot(podWithSecrets("grouped", "group-secrets"), 2000));
    const grouped = await waitRunning("grouped");
    assert.equal(
      await exec(
        "grouped",
        "id -u; stat -L -c '%a %u:%g' /mnt/secrets /mnt/secrets/key; cat /mnt/secrets/key",
      ),
      "1000\n750 0:2000\n640 0:2000\nk3y",
    );

    // Another Pod, another fsGroup, with the first Pod's volume (its tmpfs, from the host) mounted in.
    const volume = join(
      theNode().files.kubeletRoot,
      "pods",
      grouped.metadata.uid,
      "volumes/kubernetes.io~csi/secrets/mount",
    );
    const other = asNonRoot(podWithSecrets("other-group", "group-secrets"), 3000);
    const spec = other.spec as { containers: { volumeMounts: unknown[] }[]; volumes: unknown[] };
    spec.volumes.push({ name: "theirs", hostPath: { path: volume, type: "Directory" } });
    spec.containers[0].volumeMounts.push({ name: "theirs", mountPath: "/mnt/theirs", readOnly: true });
    await apply(other);
    await waitRunning("other-group");
    assert.equal(
      await exec("other-group", "stat -c %g /mnt/secrets/key; cat /mnt/secrets/key"),
      "3000\nk3y",
    );
    assert.equal(
      await exec(
        "other-group",
        "cat /mnt/theirs/key >/dev/null 2>&1 && echo read || echo refused; ls /mnt/theirs >/dev/null 2>&1 && echo listed || echo refused",
      ),
      "refused\nrefused",
    );
  },
);

Deno.test("node: teardown leaves no mounts, processes or cgroups", options, async () => {
  await recorder?.close();
  if (!dir) return;
  await stopNode(dir);
  await cluster("down");
  assert.deepEqual(await leftovers(dir, cgroupRoot), []);
  await Deno.remove(dir, { recursive: true });
});
