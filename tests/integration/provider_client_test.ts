/**
 * ProviderClient against a real gRPC provider on a unix socket (no root needed).
 */
import assert from "node:assert/strict";
import { GrpcStatus } from "../../lib/errors.ts";
import { silentLogger } from "../../lib/log.ts";
import { ProviderClient, type ProviderClientOptions } from "../../lib/provider/client.ts";
import type { CallContext, MountRequest } from "../../lib/volume/ports.ts";
import { providerCallError, TestProvider } from "../support/test-provider.ts";

const CTX: CallContext = { namespace: "team-a", pod: "web-0", timeoutMs: 5000 };

const REQUEST: MountRequest = {
  attributes: JSON.stringify({ objects: "- a\n- b", "csi.storage.k8s.io/pod.name": "web-0", "ünï": "✓" }),
  secrets: JSON.stringify({ token: "t0k\u00e9n\n\u0000" }),
  targetPath: "/var/lib/kubelet/pods/uid/volumes/kubernetes.io~csi/v/mount",
  permission: "420",
  currentObjectVersion: [{ id: "a", version: "1" }, { id: "b", version: "2" }],
};

/** A provider named "test" in a fresh directory and a client that finds it there. */
async function setup(options: Partial<ProviderClientOptions> = {}) {
  const dir = await Deno.makeTempDir({ prefix: "provider-client-" });
  const provider = await TestProvider.start(dir);
  const client = new ProviderClient({
    dirs: [dir],
    driverVersion: "v0.0.0-test",
    retry: { attempts: 3, initialMs: 10, maxMs: 50 },
    log: silentLogger,
    ...options,
  });
  return {
    dir,
    provider,
    client,
    async [Symbol.asyncDispose]() {
      client.close();
      await provider.close();
      await Deno.remove(dir, { recursive: true });
    },
  };
}

Deno.test("mount sends the request byte for byte and returns files and versions", async () => {
  await using t = await setup();
  const binary = new Uint8Array([0, 255, 10, 13, 128]);
  t.provider.behaviour = {
    files: [{ path: "a", contents: "alpha", mode: 0o400 }, { path: "dir/b", contents: binary }],
    objectVersions: [{ id: "a", version: "3" }, { id: "b", version: "4" }],
  };
  const response = await t.client.mount("test", REQUEST, CTX);

  assert.deepEqual(t.provider.mountRequests, [{
    attributes: REQUEST.attributes,
    secrets: REQUEST.secrets,
    target_path: REQUEST.targetPath,
    permission: "420",
    current_object_version: REQUEST.currentObjectVersion,
  }]);
  assert.deepEqual(response.objectVersions, [{ id: "a", version: "3" }, { id: "b", version: "4" }]);
  assert.deepEqual(response.files.map(({ path, mode }) => ({ path, mode })), [
    { path: "a", mode: 0o400 },
    { path: "dir/b", mode: 0o644 },
  ]);
  assert.equal(new TextDecoder().decode(response.files[0].contents), "alpha");
  assert.deepEqual([...response.files[1].contents], [...binary]);
  assert.equal(Object.getPrototypeOf(response.files[1].contents), Uint8Array.prototype);
});

Deno.test("a provider's error.code is the error's reason, with code UNKNOWN", async () => {
  await using t = await setup();
  t.provider.behaviour = { errorCode: "AccessDenied" };
  const err = await providerCallError(t.client.mount("test", REQUEST, CTX));
  assert.equal(err.reason, "AccessDenied");
  // UNKNOWN, upstream's code for it (final for kubelet; INTERNAL would blame the driver).
  assert.equal(err.code, GrpcStatus.UNKNOWN);
  assert.match(
    err.message,
    /provider "test" failed Mount for pod team-a\/web-0 with error code "AccessDenied"/,
  );
});

Deno.test("a response without object versions is rejected like upstream", async () => {
  await using t = await setup();
  t.provider.behaviour = { files: [], objectVersions: [] };
  const err = await providerCallError(t.client.mount("test", REQUEST, CTX));
  assert.equal(err.reason, "GRPCProviderError");
  assert.match(err.message, /without object versions/);
});

Deno.test("a provider that hangs past the deadline gets DEADLINE_EXCEEDED naming provider, pod and time", async () => {
  await using t = await setup();
  t.provider.behaviour = { hang: true };
  const err = await providerCallError(t.client.mount("test", REQUEST, { ...CTX, timeoutMs: 300 }));
  assert.equal(err.code, GrpcStatus.DEADLINE_EXCEEDED);
  assert.equal(err.message, 'provider "test" did not answer Mount for pod team-a/web-0 within 300ms');
  assert.equal(t.provider.mountRequests.length, 1, "a deadline is not retried");
});

Deno.test("a slow provider that answers within the deadline is waited for", async () => {
  await using t = await setup();
  t.provider.behaviour = { delayMs: 100, files: [{ path: "late", contents: "x" }] };
  const response = await t.client.mount("test", REQUEST, CTX);
  assert.deepEqual(response.files.map((f) => f.path), ["late"]);
});

Deno.test("UNAVAILABLE is retried until the provider answers", async () => {
  await using t = await setup();
  t.provider.unavailableFor(2);
  const response = await t.client.mount("test", REQUEST, CTX);
  assert.equal(t.provider.mountRequests.length, 3);
  assert.deepEqual(response.objectVersions, [{ id: "secret", version: "v1" }]);
});

Deno.test("UNAVAILABLE beyond the retry budget fails with UNAVAILABLE", async () => {
  await using t = await setup();
  t.provider.unavailableFor(3);
  const err = await providerCallError(t.client.mount("test", REQUEST, CTX));
  assert.equal(err.code, GrpcStatus.UNAVAILABLE);
  assert.equal(t.provider.mountRequests.length, 3);
  assert.match(
    err.message,
    /provider "test" failed Mount for pod team-a\/web-0: test provider is warming up/,
  );
});

Deno.test("other gRPC errors keep their code and are not retried", async () => {
  await using t = await setup();
  t.provider.behaviour = { grpcError: { code: GrpcStatus.PERMISSION_DENIED, message: "no access to vault" } };
  const err = await providerCallError(t.client.mount("test", REQUEST, CTX));
  assert.equal(err.code, GrpcStatus.PERMISSION_DENIED);
  assert.equal(err.reason, "GRPCProviderError");
  assert.equal(t.provider.mountRequests.length, 1);
  assert.match(err.message, /no access to vault/);
});

Deno.test("a response over maxRecvBytes is RESOURCE_EXHAUSTED naming the limit and the flag", async () => {
  await using t = await setup({ maxRecvBytes: 64 * 1024 });
  t.provider.behaviour = { files: [{ path: "big", contents: new Uint8Array(100 * 1024) }] };
  const err = await providerCallError(t.client.mount("test", REQUEST, CTX));
  assert.equal(err.code, GrpcStatus.RESOURCE_EXHAUSTED);
  assert.match(err.message, /provider "test" answered Mount for pod team-a\/web-0/);
  assert.match(err.message, /65536-byte limit; raise --max-call-recv-msg-size/);
});

Deno.test("a provider restarted on the same socket path is reached by the next call", async () => {
  await using t = await setup();
  await t.client.mount("test", REQUEST, CTX);
  await t.provider.close();
  const restarted = await TestProvider.start(t.dir);
  try {
    restarted.behaviour = { files: [{ path: "after", contents: "restart" }] };
    const response = await t.client.mount("test", REQUEST, CTX);
    assert.deepEqual(response.files.map((f) => f.path), ["after"]);
    assert.equal(restarted.mountRequests.length, 1);
  } finally {
    await restarted.close();
  }
});

Deno.test("a provider that crashed and came back is reached although its old channel failed", async () => {
  await using t = await setup();
  await t.client.mount("test", REQUEST, CTX);
  await t.provider.close();
  // A crashed provider leaves its socket file behind with nobody listening: connections are refused.
  // (Deno unlinks a unix listener's path on close, so the socket is kept by a second hard link.)
  const stale = Deno.listen({ transport: "unix", path: `${t.provider.socketPath}.old` });
  await Deno.link(`${t.provider.socketPath}.old`, t.provider.socketPath);
  stale.close();
  const err = await providerCallError(t.client.mount("test", REQUEST, CTX));
  assert.equal(err.code, GrpcStatus.UNAVAILABLE);
  assert.match(err.message, /provider "test" failed Mount for pod team-a\/web-0: .*ECONNREFUSED/);

  const restarted = await TestProvider.start(t.dir);
  try {
    await t.client.mount("test", REQUEST, CTX);
    assert.equal(restarted.mountRequests.length, 1);
  } finally {
    await restarted.close();
  }
});

Deno.test("a provider that moved to another directory is found there", async () => {
  await using t = await setup();
  const other = await Deno.makeTempDir({ prefix: "provider-client-moved-" });
  const client = new ProviderClient({ dirs: [t.dir, other], driverVersion: "v0", log: silentLogger });
  try {
    await client.mount("test", REQUEST, CTX);
    await t.provider.close();
    const moved = await TestProvider.start(other);
    try {
      await client.mount("test", REQUEST, CTX);
      assert.equal(moved.mountRequests.length, 1);
    } finally {
      await moved.close();
    }
  } finally {
    client.close();
    await Deno.remove(other, { recursive: true });
  }
});

Deno.test("a provider that is not found fails with the directories searched", async () => {
  await using t = await setup();
  const err = await providerCallError(t.client.mount("vault", REQUEST, CTX));
  assert.equal(err.code, GrpcStatus.UNAVAILABLE);
  assert.equal(err.reason, "FailedToLookupProviderGRPCClient");
  assert.match(err.message, /team-a\/web-0/);
  assert.match(err.message, new RegExp(`no vault\\.sock in ${t.dir}`));
});

Deno.test("a provider whose socket went away leaves no channel behind", async () => {
  await using t = await setup();
  await t.client.mount("test", REQUEST, CTX);
  assert.deepEqual(t.client.connectedProviders(), ["test"]);
  await t.provider.close();
  const err = await providerCallError(t.client.mount("test", REQUEST, CTX));
  assert.match(err.message, /provider "test" not found/);
  assert.deepEqual(t.client.connectedProviders(), []);
});

Deno.test("version reports the provider's runtime and sends the API version", async () => {
  await using t = await setup();
  const version = await t.client.version("test", 2000);
  assert.deepEqual(version, { version: "v1alpha1", runtimeName: "test-provider", runtimeVersion: "0.0.1" });
  assert.deepEqual(t.provider.versionRequests, ["v1alpha1"]);
});

Deno.test("calls after close fail with CANCELLED", async () => {
  await using t = await setup();
  t.client.close();
  const err = await providerCallError(t.client.mount("test", REQUEST, CTX));
  assert.equal(err.code, GrpcStatus.CANCELLED);
});
