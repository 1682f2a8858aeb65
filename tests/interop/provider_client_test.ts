/**
 * The driver's provider client (lib/provider/client.ts) against a grpc-go provider: the wire format real
 * providers (all Go programs) speak. Files, modes, binary contents, object versions, the echo of exactly
 * what the client sent, the provider's error.code, gRPC errors and the deadline.
 */
import assert from "node:assert/strict";
import { GrpcStatus } from "../../lib/errors.ts";
import { silentLogger } from "../../lib/log.ts";
import { ProviderClient } from "../../lib/provider/client.ts";
import { providerCallError } from "../support/test-provider.ts";
import type { MountRequest } from "../../lib/volume/ports.ts";
import { goPeers } from "../support/go-peers.ts";
import { type GoProviderOptions, type Server, startGoProvider } from "./peers.ts";

const PROVIDER = "gostandin";
const CTX = { pod: "app-0", namespace: "team-a", timeoutMs: 10_000 };

/** Attributes with characters that a sloppy encoder would escape or mangle. */
const ATTRIBUTES = JSON.stringify({
  secretProviderClass: "db-creds",
  "csi.storage.k8s.io/pod.name": "app-0",
  objects: "- name: päss\u2028wörd\n  type: secret",
  emoji: "🔑",
});
const SECRETS = JSON.stringify({ clientId: "id-1", clientSecret: "s3cr3t\u0000tail" });

function request(overrides: Partial<MountRequest> = {}): MountRequest {
  return {
    attributes: ATTRIBUTES,
    secrets: SECRETS,
    targetPath: "/var/lib/kubelet/pods/uid/volumes/kubernetes.io~csi/secrets/mount",
    permission: "420",
    currentObjectVersion: [{ id: "db/password", version: "v0" }],
    ...overrides,
  };
}

/** A provider socket dir, a running Go provider and a client pointed at it; `close` undoes all three. */
async function setUp(options: GoProviderOptions) {
  const dir = await Deno.makeTempDir({ prefix: "interop-provider-" });
  const { provider: bin } = await goPeers();
  let server: Server | undefined;
  try {
    server = await startGoProvider(bin, `${dir}/${PROVIDER}.sock`, options);
  } catch (err) {
    await Deno.remove(dir, { recursive: true });
    throw err;
  }
  const client = new ProviderClient({
    dirs: [dir],
    driverVersion: "interop-test",
    log: silentLogger,
    retry: { attempts: 1, initialMs: 10, maxMs: 10 },
  });
  return {
    client,
    server,
    async close() {
      client.close();
      await server.stop();
      await Deno.remove(dir, { recursive: true });
    },
  };
}

async function shortSha256(bytes: Uint8Array): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", new Uint8Array(bytes)));
  return Array.from(digest.slice(0, 8), (b) => b.toString(16).padStart(2, "0")).join("");
}

Deno.test("provider client reads files, modes, binary contents and versions from a grpc-go provider", async () => {
  const filesDir = await Deno.makeTempDir({ prefix: "interop-files-" });
  const binary = Uint8Array.from({ length: 256 }, (_, i) => i);
  await Deno.mkdir(`${filesDir}/db`);
  await Deno.writeFile(`${filesDir}/db/password`, new TextEncoder().encode("hunter2\n"), { mode: 0o600 });
  await Deno.chmod(`${filesDir}/db/password`, 0o600);
  await Deno.writeFile(`${filesDir}/cert.der`, binary);
  await Deno.chmod(`${filesDir}/cert.der`, 0o644);
  const peer = await setUp({ filesDir, files: { "fixed.txt": "fixed contents" } });
  try {
    const response = await peer.client.mount(PROVIDER, request(), CTX);
    const byPath = new Map(response.files.map((f) => [f.path, f]));
    assert.deepEqual([...byPath.keys()], [
      "cert.der",
      "db/password",
      "echo-attributes.json",
      "echo-request.json",
      "echo-secrets.json",
      "fixed.txt",
    ]);
    assert.deepEqual(byPath.get("cert.der")?.contents, binary);
    assert.deepEqual(byPath.get("cert.der")?.mode, 0o644);
    assert.deepEqual(new TextDecoder().decode(byPath.get("db/password")?.contents), "hunter2\n");
    assert.deepEqual(byPath.get("db/password")?.mode, 0o600);
    assert.deepEqual(new TextDecoder().decode(byPath.get("fixed.txt")?.contents), "fixed contents");

    // The provider saw exactly the bytes the client was given.
    assert.deepEqual(byPath.get("echo-attributes.json")?.contents, new TextEncoder().encode(ATTRIBUTES));
    assert.deepEqual(byPath.get("echo-secrets.json")?.contents, new TextEncoder().encode(SECRETS));
    const echoed = JSON.parse(new TextDecoder().decode(byPath.get("echo-request.json")?.contents));
    assert.deepEqual(echoed, {
      target_path: request().targetPath,
      permission: "420",
      current_object_version: [{ id: "db/password", version: "v0" }],
    });

    const expectedVersions = await Promise.all(
      response.files.map(async (f) => ({ id: f.path, version: await shortSha256(f.contents) })),
    );
    assert.deepEqual(response.objectVersions, expectedVersions);
  } finally {
    await peer.close();
    await Deno.remove(filesDir, { recursive: true });
  }
});

Deno.test("provider client reports a changed file as a new object version", async () => {
  const filesDir = await Deno.makeTempDir({ prefix: "interop-files-" });
  await Deno.writeTextFile(`${filesDir}/token`, "one");
  const peer = await setUp({ filesDir, echo: false });
  try {
    const before = await peer.client.mount(PROVIDER, request({ currentObjectVersion: [] }), CTX);
    await Deno.writeTextFile(`${filesDir}/token`, "two");
    const after = await peer.client.mount(
      PROVIDER,
      request({ currentObjectVersion: before.objectVersions }),
      CTX,
    );
    assert.deepEqual(before.objectVersions.map((v) => v.id), ["token"]);
    assert.deepEqual(after.objectVersions.map((v) => v.id), ["token"]);
    assert.notEqual(before.objectVersions[0].version, after.objectVersions[0].version);
    // The second call carried the first call's versions, as rotation does. Stopping the provider first
    // drains its call log.
    await peer.server.stop();
    const mounts = peer.server.stderr().split("\n").filter((l) => l.includes('"call":"Mount"')).map((l) =>
      JSON.parse(l)
    );
    assert.deepEqual(mounts.map((m) => m.currentObjectVersion), [[], before.objectVersions]);
  } finally {
    await peer.close();
    await Deno.remove(filesDir, { recursive: true });
  }
});

Deno.test("provider client calls Version on a grpc-go provider", async () => {
  const peer = await setUp({ runtimeName: "vault-like" });
  try {
    assert.deepEqual(await peer.client.version(PROVIDER, 5_000), {
      version: "v1alpha1",
      runtimeName: "vault-like",
      runtimeVersion: "0.1.0",
    });
  } finally {
    await peer.close();
  }
});

Deno.test("provider client turns MountResponse.error.code into a failure with that reason", async () => {
  const peer = await setUp({ errorCode: "AccessDenied" });
  try {
    const err = await providerCallError(peer.client.mount(PROVIDER, request(), CTX));
    assert.deepEqual(err.reason, "AccessDenied");
    assert.deepEqual(err.code, GrpcStatus.UNKNOWN);
    assert.ok(err.message.includes(`"${PROVIDER}"`) && err.message.includes("team-a/app-0"), err.message);
  } finally {
    await peer.close();
  }
});

Deno.test("provider client keeps a grpc-go status code and message", async () => {
  const peer = await setUp({ grpcCode: GrpcStatus.PERMISSION_DENIED });
  try {
    const err = await providerCallError(peer.client.mount(PROVIDER, request(), CTX));
    assert.deepEqual(err.code, GrpcStatus.PERMISSION_DENIED);
    assert.ok(err.message.includes("provider stand-in told to fail with code 7"), err.message);
  } finally {
    await peer.close();
  }
});

Deno.test("provider client gives up on a slow grpc-go provider at the deadline", async () => {
  const peer = await setUp({ delay: "60s" });
  try {
    const err = await providerCallError(peer.client.mount(PROVIDER, request(), { ...CTX, timeoutMs: 300 }));
    assert.deepEqual(err.code, GrpcStatus.DEADLINE_EXCEEDED);
    assert.ok(err.message.includes("within 300ms") && err.message.includes("team-a/app-0"), err.message);
  } finally {
    await peer.close();
  }
});
