/**
 * The CSI server over a real unix socket with the real client; the VolumeService is a recording double, so no
 * root is needed.
 */
import * as grpc from "@grpc/grpc-js";
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { connectCsi, type CsiClient } from "../../lib/csi/client.ts";
import type { NodePublishVolumeRequest } from "../../lib/csi/node.ts";
import { type CsiServer, SOCKET_MODE, startCsiServer } from "../../lib/csi/server.ts";
import { DriverError, GrpcStatus, grpcStatusName } from "../../lib/errors.ts";
import { createLogger } from "../../lib/log.ts";
import type { PublishRequest, VolumeService } from "../../lib/volume/ports.ts";

const TOKEN_KEY = "csi.storage.k8s.io/serviceAccount.tokens";
const TOKEN_VALUE = '{"vault":{"token":"tok-3f9a-never-logged"}}';
const SECRET_VALUE = "s3cr3t-never-logged";

/** A VolumeService that records what reaches it; `onPublish` may throw or hold the call open. */
class RecordingVolumes implements VolumeService {
  published: PublishRequest[] = [];
  unpublished: { volumeId: string; targetPath: string }[] = [];
  onPublish: (request: PublishRequest) => Promise<void> = () => Promise.resolve();
  onUnpublish: () => Promise<void> = () => Promise.resolve();

  publish(request: PublishRequest): Promise<void> {
    this.published.push(request);
    return this.onPublish(request);
  }

  unpublish(volumeId: string, targetPath: string): Promise<void> {
    this.unpublished.push({ volumeId, targetPath });
    return this.onUnpublish();
  }
}

interface Harness {
  server: CsiServer;
  client: CsiClient;
  volumes: RecordingVolumes;
  logs: string[];
  endpoint: string;
}

async function withServer(
  fn: (h: Harness) => Promise<void>,
  extra: { ready?: () => Promise<boolean> } = {},
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "csi-server-" });
  const endpoint = `unix://${dir}/plugin/csi.sock`;
  const volumes = new RecordingVolumes();
  const logs: string[] = [];
  const log = createLogger({ json: true, verbosity: 5, sink: (line) => logs.push(line) });
  const server = await startCsiServer({
    endpoint,
    driverName: "secrets-store.csi.k8s.io",
    version: "v9.8.7",
    nodeId: "node-a",
    volumes,
    log,
    ...extra,
  });
  const client = connectCsi(endpoint);
  try {
    await fn({ server, client, volumes, logs, endpoint });
  } finally {
    client.close();
    await server.shutdown(1_000);
    await Deno.remove(dir, { recursive: true });
  }
}

/** Asserts that `promise` rejects with a gRPC status `code` and exactly `message`. */
async function assertStatus(promise: Promise<unknown>, code: grpc.status, message?: string): Promise<void> {
  await assert.rejects(promise, (err: grpc.ServiceError) => {
    assert.equal(grpcStatusName(err.code), grpcStatusName(code), `unexpected status: ${err.details}`);
    if (message !== undefined) assert.equal(err.details, message);
    return true;
  });
}

const CAPABILITY = { mount: {}, access_mode: { mode: "SINGLE_NODE_READER_ONLY" } };

function validPublish(): NodePublishVolumeRequest {
  return {
    volume_id: "csi-0123",
    target_path: "/var/lib/kubelet/pods/uid-1/volumes/kubernetes.io~csi/secrets/mount",
    volume_capability: CAPABILITY,
    readonly: true,
    volume_context: {
      secretProviderClass: "app-secrets",
      "csi.storage.k8s.io/pod.name": "web-0",
      "csi.storage.k8s.io/pod.namespace": "default",
      [TOKEN_KEY]: TOKEN_VALUE,
    },
    secrets: { password: SECRET_VALUE },
  };
}

Deno.test("Identity: plugin info, CONTROLLER_SERVICE capability, ready probe", async () => {
  await withServer(async ({ client }) => {
    const info = await client.getPluginInfo();
    assert.equal(info.name, "secrets-store.csi.k8s.io");
    assert.equal(info.vendor_version, "v9.8.7");
    const caps = await client.getPluginCapabilities();
    assert.deepEqual(caps.capabilities.map((c) => c.service?.type), ["CONTROLLER_SERVICE"]);
    assert.deepEqual(await client.probe(), { ready: { value: true } });
  });
});

Deno.test("Identity: Probe reports the readiness callback", async () => {
  await withServer(async ({ client }) => {
    assert.deepEqual(await client.probe(), { ready: { value: false } });
  }, { ready: () => Promise.resolve(false) });
});

Deno.test("Controller: one UNKNOWN RPC capability; other Controller RPCs are UNIMPLEMENTED", async () => {
  await withServer(async ({ client, server }) => {
    const caps = await client.controllerGetCapabilities();
    assert.deepEqual(caps.capabilities.map((c) => c.rpc?.type), ["UNKNOWN"]);

    const raw = new grpc.Client(`unix:${server.socketPath}`, grpc.credentials.createInsecure());
    try {
      const createVolume = new Promise((resolve, reject) =>
        raw.makeUnaryRequest(
          "/csi.v1.Controller/CreateVolume",
          () => Buffer.alloc(0),
          (bytes: Buffer) => bytes,
          {},
          (err, value) => err ? reject(err) : resolve(value),
        )
      );
      await assertStatus(createVolume, GrpcStatus.UNIMPLEMENTED);
    } finally {
      raw.close();
    }
  });
});

Deno.test("Node: STAGE_UNSTAGE_VOLUME and VOLUME_MOUNT_GROUP capabilities and the node id", async () => {
  await withServer(async ({ client }) => {
    const caps = await client.nodeGetCapabilities();
    assert.deepEqual(caps.capabilities.map((c) => c.rpc?.type), [
      "STAGE_UNSTAGE_VOLUME",
      "VOLUME_MOUNT_GROUP",
    ]);
    const info = await client.nodeGetInfo();
    assert.equal(info.node_id, "node-a");
  });
});

Deno.test("NodePublishVolume: each missing argument is INVALID_ARGUMENT, checked in upstream's order", async () => {
  const cases: [string, (r: NodePublishVolumeRequest) => void, string][] = [
    ["no capability", (r) => delete r.volume_capability, "Volume capability missing in request"],
    ["no volume id", (r) => delete r.volume_id, "Volume ID missing in request"],
    ["no target path", (r) => delete r.target_path, "Target path missing in request"],
    ["no volume context", (r) => delete r.volume_context, "Volume attributes missing in request"],
    ["empty volume context", (r) => r.volume_context = {}, "Volume attributes missing in request"],
    ["readonly false", (r) => r.readonly = false, "Readonly is not true in request"],
    ["readonly unset", (r) => delete r.readonly, "Readonly is not true in request"],
    // Several missing: the first check in upstream's order wins.
    [
      "nothing at all",
      (r) => Object.keys(r).forEach((k) => delete r[k as keyof typeof r]),
      "Volume capability missing in request",
    ],
    ["no id and no path", (r) => {
      delete r.volume_id;
      delete r.target_path;
    }, "Volume ID missing in request"],
  ];
  await withServer(async ({ client, volumes }) => {
    for (const [name, mutate, message] of cases) {
      const request = validPublish();
      mutate(request);
      await assertStatus(client.nodePublishVolume(request), GrpcStatus.INVALID_ARGUMENT, message).catch(
        (err) => {
          throw new Error(`case "${name}": ${err.message}`);
        },
      );
    }
    assert.equal(volumes.published.length, 0, "a rejected request must not reach the volume service");
  });
});

Deno.test("NodePublishVolume: a valid request reaches the volume service with every field", async () => {
  await withServer(async ({ client, volumes }) => {
    assert.deepEqual(await client.nodePublishVolume(validPublish()), {});
    const request = validPublish();
    assert.deepEqual(volumes.published, [{
      volumeId: request.volume_id,
      targetPath: request.target_path,
      readonly: true,
      volumeContext: request.volume_context,
      secrets: request.secrets,
    }]);
  });
});

Deno.test("NodePublishVolume: volume_mount_group (the pod's fsGroup) reaches the volume service as a gid", async () => {
  await withServer(async ({ client, volumes }) => {
    for (const [group, gid] of [["2000", 2000], ["0", 0], ["4294967294", 4294967294]] as const) {
      const request = {
        ...validPublish(),
        volume_capability: { ...CAPABILITY, mount: { volume_mount_group: group } },
      };
      await client.nodePublishVolume(request);
      assert.equal(volumes.published.at(-1)?.mountGroup, gid);
    }
    await client.nodePublishVolume({ ...validPublish(), volume_capability: { ...CAPABILITY, mount: {} } });
    assert.ok(!("mountGroup" in volumes.published.at(-1)!), "no group without volume_mount_group");
  });
});

Deno.test("NodePublishVolume: a volume_mount_group that is not a gid is INVALID_ARGUMENT", async () => {
  await withServer(async ({ client, volumes }) => {
    for (const group of ["-1", "2000a", " 2000", "0x10", "1e3", "4294967295", "99999999999", "staff"]) {
      const request = {
        ...validPublish(),
        volume_capability: { ...CAPABILITY, mount: { volume_mount_group: group } },
      };
      await assertStatus(
        client.nodePublishVolume(request),
        GrpcStatus.INVALID_ARGUMENT,
        `volume_mount_group ${JSON.stringify(group)} is not a group id (a decimal number up to 4294967294)`,
      );
    }
    assert.equal(volumes.published.length, 0);
  });
});

Deno.test("NodePublishVolume: block access and no secrets are passed through as given", async () => {
  await withServer(async ({ client, volumes }) => {
    const request = { ...validPublish(), volume_capability: { block: {} }, secrets: undefined };
    await client.nodePublishVolume(request);
    assert.deepEqual(volumes.published[0].secrets, {});
  });
});

Deno.test("NodePublishVolume: a DriverError keeps its code and message; other errors are INTERNAL", async () => {
  await withServer(async ({ client, volumes }) => {
    volumes.onPublish = () =>
      Promise.reject(
        new DriverError(GrpcStatus.NOT_FOUND, "SecretProviderClass default/app-secrets not found"),
      );
    await assertStatus(
      client.nodePublishVolume(validPublish()),
      GrpcStatus.NOT_FOUND,
      "SecretProviderClass default/app-secrets not found",
    );
    volumes.onPublish = () => Promise.reject(new Error("provider socket vanished"));
    await assertStatus(
      client.nodePublishVolume(validPublish()),
      GrpcStatus.INTERNAL,
      "provider socket vanished",
    );
    volumes.onUnpublish = () =>
      Promise.reject(new DriverError(GrpcStatus.FAILED_PRECONDITION, "target is busy; retry later"));
    await assertStatus(
      client.nodeUnpublishVolume({ volume_id: "v", target_path: "/t" }),
      GrpcStatus.FAILED_PRECONDITION,
      "target is busy; retry later",
    );
  });
});

Deno.test("NodeUnpublishVolume: argument checks, then the volume service", async () => {
  await withServer(async ({ client, volumes }) => {
    await assertStatus(
      client.nodeUnpublishVolume({ target_path: "/t" }),
      GrpcStatus.INVALID_ARGUMENT,
      "Volume ID missing in request",
    );
    await assertStatus(
      client.nodeUnpublishVolume({ volume_id: "v" }),
      GrpcStatus.INVALID_ARGUMENT,
      "Target path missing in request",
    );
    await assertStatus(
      client.nodeUnpublishVolume({}),
      GrpcStatus.INVALID_ARGUMENT,
      "Volume ID missing in request",
    );
    assert.equal(volumes.unpublished.length, 0);
    assert.deepEqual(
      await client.nodeUnpublishVolume({ volume_id: "csi-1", target_path: "/pods/x/mount" }),
      {},
    );
    assert.deepEqual(volumes.unpublished, [{ volumeId: "csi-1", targetPath: "/pods/x/mount" }]);
  });
});

Deno.test("NodeStageVolume / NodeUnstageVolume: argument checks only", async () => {
  await withServer(async ({ client, volumes }) => {
    const stage = { volume_id: "v", staging_target_path: "/staging", volume_capability: CAPABILITY };
    await assertStatus(
      client.nodeStageVolume({ ...stage, volume_id: "" }),
      GrpcStatus.INVALID_ARGUMENT,
      "Volume ID missing in request",
    );
    await assertStatus(
      client.nodeStageVolume({ ...stage, staging_target_path: "" }),
      GrpcStatus.INVALID_ARGUMENT,
      "Target path missing in request",
    );
    await assertStatus(
      client.nodeStageVolume({ ...stage, volume_capability: null }),
      GrpcStatus.INVALID_ARGUMENT,
      "Volume capability missing in request",
    );
    assert.deepEqual(await client.nodeStageVolume(stage), {});

    await assertStatus(
      client.nodeUnstageVolume({ staging_target_path: "/staging" }),
      GrpcStatus.INVALID_ARGUMENT,
      "Volume ID missing in request",
    );
    await assertStatus(
      client.nodeUnstageVolume({ volume_id: "v" }),
      GrpcStatus.INVALID_ARGUMENT,
      "Target path missing in request",
    );
    assert.deepEqual(await client.nodeUnstageVolume({ volume_id: "v", staging_target_path: "/staging" }), {});
    assert.equal(volumes.published.length + volumes.unpublished.length, 0);
  });
});

Deno.test("NodeGetVolumeStats and NodeExpandVolume are UNIMPLEMENTED with a sentence", async () => {
  await withServer(async ({ client }) => {
    await assertStatus(
      client.nodeGetVolumeStats({ volume_id: "v", volume_path: "/p" }),
      GrpcStatus.UNIMPLEMENTED,
      "NodeGetVolumeStats is not implemented: the driver does not report volume statistics",
    );
    await assertStatus(
      client.nodeExpandVolume({ volume_id: "v", volume_path: "/p" }),
      GrpcStatus.UNIMPLEMENTED,
      "NodeExpandVolume is not implemented: secrets-store volumes cannot be resized",
    );
  });
});

Deno.test("logging: every call with method and duration, errors at error level, no secrets or tokens", async () => {
  await withServer(async ({ client, volumes, logs }) => {
    await client.nodePublishVolume(validPublish());
    volumes.onPublish = () => Promise.reject(new DriverError(GrpcStatus.NOT_FOUND, "no such class"));
    await client.nodePublishVolume(validPublish()).catch(() => {});
    await client.nodePublishVolume({ ...validPublish(), readonly: false }).catch(() => {});

    const entries = logs.map((line) => JSON.parse(line));
    const calls = entries.filter((e) => e.method === "/csi.v1.Node/NodePublishVolume");
    assert.equal(calls.length, 3);
    assert.deepEqual(calls.map((e) => e.level), ["info", "error", "error"]);
    for (const entry of calls) {
      assert.equal(typeof entry.durationMs, "number");
      assert.equal(entry.volume_id, "csi-0123");
    }
    assert.equal(calls[1].code, "NOT_FOUND");
    assert.equal(calls[1].error, "no such class");
    const all = logs.join("\n");
    for (const secret of [SECRET_VALUE, "tok-3f9a-never-logged", "app-secrets"]) {
      assert.ok(!all.includes(secret), `log output contains ${secret}`);
    }
  });
});

Deno.test("the socket is owner-only, in a created parent directory, and removed on shutdown", async () => {
  const dir = await Deno.makeTempDir({ prefix: "csi-server-" });
  try {
    const server = await startCsiServer({
      endpoint: `unix://${dir}/new/parent/csi.sock`,
      driverName: "d",
      version: "v",
      nodeId: "n",
      volumes: new RecordingVolumes(),
      log: createLogger({ json: true, verbosity: 0, sink: () => {} }),
    });
    assert.equal(server.socketPath, `${dir}/new/parent/csi.sock`);
    const info = await Deno.lstat(server.socketPath);
    assert.ok(info.isSocket);
    assert.equal(info.mode! & 0o777, SOCKET_MODE);
    await server.shutdown();
    await assert.rejects(Deno.lstat(server.socketPath), Deno.errors.NotFound);
    await server.shutdown(); // idempotent
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a stale socket file is replaced; a regular file at the socket path is refused", async () => {
  const dir = await Deno.makeTempDir({ prefix: "csi-server-" });
  const options = {
    driverName: "d",
    version: "v",
    nodeId: "n",
    volumes: new RecordingVolumes(),
    log: createLogger({ json: true, verbosity: 0, sink: () => {} }),
  };
  try {
    // A socket inode nobody listens on, as a crashed driver leaves behind.
    const stale = `${dir}/stale.sock`;
    const listener = Deno.listen({ transport: "unix", path: `${dir}/live.sock` });
    await Deno.link(`${dir}/live.sock`, stale);
    listener.close();
    const server = await startCsiServer({ ...options, endpoint: `unix://${stale}` });
    const client = connectCsi(`unix://${stale}`);
    try {
      assert.equal((await client.nodeGetInfo()).node_id, "n");
    } finally {
      client.close();
      await server.shutdown();
    }

    const regular = `${dir}/not-a-socket`;
    await Deno.writeTextFile(regular, "keep me");
    await assert.rejects(
      startCsiServer({ ...options, endpoint: `unix://${regular}` }),
      /cannot listen on .*not-a-socket: it exists and is not a socket/,
    );
    assert.equal(await Deno.readTextFile(regular), "keep me");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

/** A publish the test holds open: resolves `started` when it arrives and finishes on `release()`. */
function heldPublish(volumes: RecordingVolumes) {
  const started = Promise.withResolvers<void>();
  const released = Promise.withResolvers<void>();
  volumes.onPublish = () => {
    started.resolve();
    return released.promise;
  };
  return { started: started.promise, release: () => released.resolve() };
}

Deno.test("graceful shutdown: stops accepting, lets the in-flight publish finish, then removes the socket", async () => {
  await withServer(async ({ server, client, volumes, endpoint }) => {
    const held = heldPublish(volumes);
    const publish = client.nodePublishVolume(validPublish());
    await held.started;

    let stopped = false;
    const shutdown = server.shutdown(60_000).then(() => stopped = true);

    // New connections are refused while the publish is still in flight.
    const late = connectCsi(endpoint);
    try {
      await assertStatus(late.getPluginInfo(), GrpcStatus.UNAVAILABLE);
    } finally {
      late.close();
    }
    assert.equal(stopped, false, "shutdown finished while a call was in flight");

    held.release();
    assert.deepEqual(await publish, {});
    await shutdown;
    await assert.rejects(Deno.lstat(server.socketPath), Deno.errors.NotFound);
  });
});

Deno.test("shutdown force-closes a call that outlasts the grace period", async () => {
  await withServer(async ({ server, client, volumes }) => {
    const held = heldPublish(volumes);
    // The handler is attached now: the call may fail while shutdown() is still being awaited.
    const publishFails = assert.rejects(
      client.nodePublishVolume(validPublish()),
      (err: grpc.ServiceError) => err.code !== GrpcStatus.OK,
    );
    await held.started;
    try {
      await server.shutdown(50);
      await publishFails;
      await assert.rejects(Deno.lstat(server.socketPath), Deno.errors.NotFound);
    } finally {
      held.release();
    }
  });
});
