/**
 * The driver between real grpc-go peers, run as it is deployed: `main.ts node` in standalone mode on a
 * unix socket, a kubelet that dials it the way kubelet's CSI client does, and providers on
 * `<provider-volume>/<name>.sock`. Each scenario publishes, checks the files on the tmpfs, republishes,
 * unpublishes and checks that no mount is left.
 *
 *   Go kubelet  → driver → Deno `local` provider (main.ts provider local)
 *   Go kubelet  → driver → Go provider
 *   Deno client → driver → Go provider
 */
import assert from "node:assert/strict";
import { connectCsi } from "../../lib/csi/client.ts";
import type { NodePublishVolumeRequest } from "../../lib/csi/node.ts";
import { MNT_DETACH, sysUmount2 } from "../../lib/mount/libc.ts";
import { isMountPoint, mountsUnder } from "../../lib/mount/mountinfo.ts";
import { goPeers } from "../support/go-peers.ts";
import { requireRoot } from "../support/root.ts";
import {
  type KubeletCall,
  type KubeletDial,
  type KubeletOptions,
  runKubelet,
  type Server,
  startDriver,
  startGoProvider,
  startLocalProvider,
} from "./peers.ts";

const DRIVER_NAME = "secrets-store.csi.k8s.io";
const NODE_ID = "node-interop";

/** A driver in standalone mode with its provider directory, SPC directory and kubelet-shaped pod dirs. */
interface TestNode {
  dir: string;
  providerVolume: string;
  socket: string;
  driver: Server;
  /** Stops `server` with the node. */
  track(server: Server): void;
  writeSpc(name: string, provider: string, parameters: Record<string, string>): Promise<void>;
  /** kubelet's target path for an inline volume of pod `uid`; its parent exists, as kubelet ensures. */
  target(uid: string): Promise<string>;
  close(): Promise<void>;
}

async function startNode(driverArgs: string[] = []): Promise<TestNode> {
  const dir = await Deno.makeTempDir({ prefix: "interop-node-" });
  const providerVolume = `${dir}/providers`;
  const spcDir = `${dir}/spc`;
  const socket = `${dir}/plugins/csi.sock`;
  await Deno.mkdir(providerVolume);
  await Deno.mkdir(spcDir);
  const servers: Server[] = [];
  const close = async () => {
    for (const server of servers.reverse()) await server.stop();
    // A failed test may leave a mount behind; never leave it on the machine.
    for (const mount of (await mountsUnder(dir)).reverse()) sysUmount2(mount.mountPoint, MNT_DETACH);
    await Deno.remove(dir, { recursive: true });
  };
  let driver: Server;
  try {
    driver = await startDriver({
      endpointSocket: socket,
      nodeId: NODE_ID,
      providerVolume,
      spcDir,
      // Targets are kubelet-shaped paths below the temp dir.
      extraArgs: [`--kubelet-root-dir=${dir}`, ...driverArgs],
    });
  } catch (err) {
    await close();
    throw err;
  }
  servers.push(driver);
  return {
    dir,
    providerVolume,
    socket,
    driver,
    track: (server) => servers.push(server),
    async writeSpc(name, provider, parameters) {
      const spc = {
        apiVersion: "secrets-store.csi.x-k8s.io/v1",
        kind: "SecretProviderClass",
        metadata: { name, namespace: "default" },
        spec: { provider, parameters },
      };
      await Deno.writeTextFile(`${spcDir}/${name}.json`, JSON.stringify(spc, null, 2));
    },
    async target(uid) {
      const volumeDir = `${dir}/pods/${uid}/volumes/kubernetes.io~csi/secrets-store-inline`;
      await Deno.mkdir(volumeDir, { recursive: true });
      return `${volumeDir}/mount`;
    },
    close,
  };
}

/** Runs a kubelet step and asserts that it made exactly `calls`, all successful. */
async function kubeletStep(
  node: TestNode,
  step: Parameters<typeof runKubelet>[2],
  options: KubeletOptions,
  calls: string[],
): Promise<KubeletCall[]> {
  const { kubelet } = await goPeers();
  const result = await runKubelet(kubelet, node.socket, step, options);
  const context = `kubelet ${step}: ${JSON.stringify(result.calls, null, 1)}\n${result.stderr}\n` +
    `driver log:\n${node.driver.stderr()}`;
  assert.equal(result.exitCode, 0, context);
  assert.deepEqual(result.calls.map((c) => c.call), calls, context);
  return result.calls;
}

/** The types in a protojson capability list: [{rpc: {type}}] or [{service: {type}}]. */
function capabilityTypes(response: Record<string, unknown> | undefined, kind: "rpc" | "service"): string[] {
  const list = (response?.capabilities ?? []) as Record<string, { type: string } | undefined>[];
  return list.map((c) => c[kind]?.type ?? "(other)");
}

/** What kubelet's identity calls must show of this driver. */
async function checkIdentity(node: TestNode, dial: KubeletDial): Promise<void> {
  const calls = await kubeletStep(node, "identity", { dial }, [
    "GetPluginInfo",
    "GetPluginCapabilities",
    "Probe",
    "ControllerGetCapabilities",
    "NodeGetCapabilities",
    "NodeGetInfo",
  ]);
  const [info, pluginCaps, , controllerCaps, nodeCaps, nodeInfo] = calls.map((c) => c.response);
  assert.equal(info?.name, DRIVER_NAME);
  assert.ok(capabilityTypes(pluginCaps, "service").includes("CONTROLLER_SERVICE"));
  assert.deepEqual(capabilityTypes(controllerCaps, "rpc"), ["UNKNOWN"]);
  assert.ok(capabilityTypes(nodeCaps, "rpc").includes("STAGE_UNSTAGE_VOLUME"));
  assert.equal(nodeInfo?.node_id, NODE_ID);
}

/** Publish, check, republish, check, unpublish, check: the kubelet half of every scenario. */
async function publishLifecycle(
  node: TestNode,
  options: KubeletOptions & { targetPath: string },
  checkFiles: () => Promise<void>,
): Promise<void> {
  const { targetPath } = options;
  await kubeletStep(node, "publish", options, ["NodePublishVolume"]);
  assert.ok(await isMountPoint(targetPath), `${targetPath} is not a mount point after publish`);
  await checkFiles();
  const mounted = (await mountsUnder(node.dir)).map((m) => m.mountPoint);
  assert.deepEqual(mounted, [targetPath]);

  // kubelet republishes (requiresRepublish, or a retry after a lost answer): same call, nothing stacked.
  await kubeletStep(node, "publish", options, ["NodePublishVolume"]);
  assert.deepEqual((await mountsUnder(node.dir)).map((m) => m.mountPoint), [targetPath]);
  await checkFiles();

  await kubeletStep(node, "unpublish", options, ["NodeUnpublishVolume"]);
  assert.deepEqual(await mountsUnder(node.dir), [], "a mount is left after unpublish");
  assert.equal(await isMountPoint(targetPath), false);
}

const text = (path: string) => Deno.readTextFile(path);

Deno.test("Go kubelet → driver → Deno local provider: publish, republish, unpublish", async () => {
  requireRoot();
  const node = await startNode();
  try {
    const root = `${node.dir}/local-root`;
    await Deno.mkdir(`${root}/db`, { recursive: true });
    await Deno.writeTextFile(`${root}/db/password`, "hunter2\n");
    await Deno.writeTextFile(`${root}/config.yaml`, "level: debug\n");
    node.track(await startLocalProvider(node.providerVolume, root));
    await node.writeSpc("local-creds", "local", {
      objects:
        '- objectName: db/password\n  objectAlias: password\n  mode: "0400"\n- objectName: config.yaml\n',
    });

    await checkIdentity(node, "kubelet");
    const uid = "0f6f6c1e-4a39-4c1f-9d1e-6d1b8f2b7a10";
    const targetPath = await node.target(uid);
    await publishLifecycle(
      node,
      { targetPath, spc: "local-creds", podName: "app-0", podUid: uid },
      async () => {
        assert.equal(await text(`${targetPath}/password`), "hunter2\n");
        assert.equal(await text(`${targetPath}/config.yaml`), "level: debug\n");
        assert.equal((await Deno.stat(`${targetPath}/password`)).mode! & 0o777, 0o400);
        // kubelet's AtomicWriter layout: top-level names are links through ..data.
        assert.ok((await Deno.lstat(`${targetPath}/password`)).isSymlink);
        assert.ok((await Deno.lstat(`${targetPath}/..data`)).isSymlink);
      },
    );
  } finally {
    await node.close();
  }
});

Deno.test("Go kubelet → driver → Go provider: the provider receives exactly what upstream sends", async () => {
  requireRoot();
  const { provider } = await goPeers();
  // The chattiest log level: even then no secret may reach the log.
  const node = await startNode(["--v", "5"]);
  try {
    const filesDir = `${node.dir}/go-files`;
    await Deno.mkdir(filesDir);
    await Deno.writeTextFile(`${filesDir}/api-key`, "k3y");
    node.track(await startGoProvider(provider, `${node.providerVolume}/gostandin.sock`, { filesDir }));
    // `<`, `>` and `&` must arrive escaped as Go's json.Marshal writes them.
    const parameters = { keyvaultName: "kv-1", objects: "array:\n  - objectName: <api-key> & more\n" };
    await node.writeSpc("go-creds", "gostandin", parameters);

    // Every :authority a CSI client sends on a unix socket today (kubelet-legacy, the raw socket path of
    // kubelets up to 1.25, is not accepted by Deno's HTTP/2 server).
    for (const dial of ["kubelet", "grpc-escaped", "unix"] as const) await checkIdentity(node, dial);
    const uid = "5d1c2b3a-8e7f-4a6b-9c0d-1e2f3a4b5c6d";
    const targetPath = await node.target(uid);
    const options = {
      dial: "unix" as const,
      targetPath,
      spc: "go-creds",
      podName: "web-1",
      podNamespace: "default",
      podUid: uid,
      serviceAccount: "web",
      secrets: { clientId: "id-1", clientSecret: "s3cr3t" },
    };
    await publishLifecycle(node, options, async () => {
      assert.equal(await text(`${targetPath}/api-key`), "k3y");
      const rawAttributes = await text(`${targetPath}/echo-attributes.json`);
      const attributes = JSON.parse(rawAttributes);
      assert.deepEqual(attributes, {
        ...parameters,
        secretProviderClass: "go-creds",
        "csi.storage.k8s.io/pod.name": "web-1",
        "csi.storage.k8s.io/pod.namespace": "default",
        "csi.storage.k8s.io/pod.uid": uid,
        "csi.storage.k8s.io/serviceAccount.name": "web",
        "csi.storage.k8s.io/ephemeral": "true",
      });
      assert.deepEqual(
        Object.keys(attributes),
        Object.keys(attributes).sort(),
        "keys are not sorted as Go sorts",
      );
      assert.ok(rawAttributes.includes("\\u003capi-key\\u003e \\u0026 more"), rawAttributes);
      assert.equal(
        await text(`${targetPath}/echo-secrets.json`),
        '{"clientId":"id-1","clientSecret":"s3cr3t"}',
      );
      const request = JSON.parse(await text(`${targetPath}/echo-request.json`));
      assert.equal(request.target_path, targetPath);
      assert.equal(request.permission, "420");
    });
    await node.driver.stop();
    assert.ok(!node.driver.stderr().includes("s3cr3t"), "a secret reached the driver's log");
  } finally {
    await node.close();
  }
});

Deno.test("Go kubelet → driver → failing Go provider: the error reaches kubelet and no mount is left", async () => {
  requireRoot();
  const { kubelet, provider } = await goPeers();
  const node = await startNode();
  try {
    node.track(
      await startGoProvider(provider, `${node.providerVolume}/gofail.sock`, { errorCode: "AccessDenied" }),
    );
    await node.writeSpc("failing", "gofail", { a: "b" });
    const targetPath = await node.target("9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d");

    const failed = await runKubelet(kubelet, node.socket, "publish", { targetPath, spc: "failing" });
    assert.equal(failed.exitCode, 1, JSON.stringify(failed.calls));
    const [call] = failed.calls;
    assert.equal(call.ok, false);
    assert.ok(call.code && call.code !== "OK", JSON.stringify(call));
    assert.ok(call.message?.includes("gofail"), `the error does not name the provider: ${call.message}`);
    assert.deepEqual(await mountsUnder(node.dir), [], "a failed first mount must be unmounted");

    const missing = await runKubelet(kubelet, node.socket, "publish", { targetPath, spc: "no-such-class" });
    assert.equal(missing.exitCode, 1, JSON.stringify(missing.calls));
    assert.ok(missing.calls[0].message?.includes("no-such-class"), JSON.stringify(missing.calls));
    assert.deepEqual(await mountsUnder(node.dir), []);
  } finally {
    await node.close();
  }
});

Deno.test("Deno CSI client → driver → Go provider: publish, republish, unpublish", async () => {
  requireRoot();
  const { provider } = await goPeers();
  const node = await startNode();
  const client = connectCsi(`unix://${node.socket}`);
  try {
    node.track(
      await startGoProvider(provider, `${node.providerVolume}/gostandin.sock`, { files: { token: "t0k" } }),
    );
    await node.writeSpc("go-token", "gostandin", { role: "reader" });
    assert.equal((await client.getPluginInfo()).name, DRIVER_NAME);
    assert.equal((await client.nodeGetInfo()).node_id, NODE_ID);

    const uid = "1a2b3c4d-5e6f-4a1b-8c2d-3e4f5a6b7c8d";
    const targetPath = await node.target(uid);
    const request = {
      volume_id: `csi-${uid}`,
      target_path: targetPath,
      volume_capability: { mount: {}, access_mode: { mode: "SINGLE_NODE_READER_ONLY" } },
      readonly: true,
      volume_context: {
        secretProviderClass: "go-token",
        "csi.storage.k8s.io/pod.name": "job-2",
        "csi.storage.k8s.io/pod.namespace": "default",
        "csi.storage.k8s.io/pod.uid": uid,
        "csi.storage.k8s.io/serviceAccount.name": "default",
        "csi.storage.k8s.io/ephemeral": "true",
      },
      secrets: { password: "pw" },
    } as NodePublishVolumeRequest;

    for (const attempt of ["publish", "republish"]) {
      await client.nodePublishVolume(request);
      assert.deepEqual((await mountsUnder(node.dir)).map((m) => m.mountPoint), [targetPath], attempt);
      assert.equal(await text(`${targetPath}/token`), "t0k");
      assert.equal(await text(`${targetPath}/echo-secrets.json`), '{"password":"pw"}');
      assert.equal(JSON.parse(await text(`${targetPath}/echo-attributes.json`)).role, "reader");
    }
    await client.nodeUnpublishVolume({ volume_id: request.volume_id, target_path: targetPath });
    assert.deepEqual(await mountsUnder(node.dir), []);
  } finally {
    client.close();
    await node.close();
  }
});
