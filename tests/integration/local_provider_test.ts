/**
 * The embedded `local` provider over real gRPC on a unix socket (no root needed).
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { join } from "node:path";
import { GrpcStatus } from "../../lib/errors.ts";
import { createLogger, silentLogger } from "../../lib/log.ts";
import { ProviderClient } from "../../lib/provider/client.ts";
import { providerCallError } from "../support/test-provider.ts";
import { LOCAL_PROVIDER_NAME, serveLocalProvider } from "../../lib/provider/local.ts";
import type { CallContext, MountResponse, ObjectVersion } from "../../lib/volume/ports.ts";
import { DRIVER_VERSION } from "../../lib/version.ts";

const CTX: CallContext = { namespace: "default", pod: "demo", timeoutMs: 5000 };

/** A root with `db/password` and `api-key`, the local provider serving it, and a client. */
async function setup() {
  const base = await Deno.makeTempDir({ prefix: "local-provider-" });
  const root = join(base, "root");
  const socketDir = join(base, "sockets");
  await Deno.mkdir(join(root, "db"), { recursive: true });
  await Deno.writeTextFile(join(root, "db", "password"), "hunter2");
  await Deno.writeTextFile(join(root, "api-key"), "k-123");
  await Deno.writeTextFile(join(base, "outside"), "not yours");
  const lines: string[] = [];
  const log = createLogger({ json: true, verbosity: 5, sink: (line) => lines.push(line) });
  const server = await serveLocalProvider({ socketDir, root, log });
  const client = new ProviderClient({ dirs: [socketDir], driverVersion: "v0", log: silentLogger });
  return {
    base,
    root,
    server,
    lines,
    mount(objects: string, currentObjectVersion: ObjectVersion[] = []): Promise<MountResponse> {
      const request = {
        attributes: JSON.stringify({ objects, "csi.storage.k8s.io/pod.name": "demo" }),
        secrets: "{}",
        targetPath: join(base, "target"),
        permission: "420",
        currentObjectVersion,
      };
      return client.mount(LOCAL_PROVIDER_NAME, request, CTX);
    },
    client,
    async [Symbol.asyncDispose]() {
      client.close();
      await server.close();
      await Deno.remove(base, { recursive: true });
    },
  };
}

const sha256 = (text: string) => createHash("sha256").update(text).digest("hex");
const text = (bytes: Uint8Array) => new TextDecoder().decode(bytes);

Deno.test("serves files with alias and mode, versions are sha256 of the contents", async () => {
  await using t = await setup();
  assert.equal(t.server.socketPath, join(t.base, "sockets", "local.sock"));
  const response = await t.mount(`
- objectName: db/password
  objectAlias: password
  mode: "0400"
- objectName: api-key
- objectName: db/password
  objectAlias: pw-octal
  mode: 0440
`);
  assert.deepEqual(
    response.files.map(({ path, mode, contents }) => ({ path, mode, contents: text(contents) })),
    [
      { path: "password", mode: 0o400, contents: "hunter2" },
      { path: "api-key", mode: 0o644, contents: "k-123" },
      { path: "pw-octal", mode: 0o440, contents: "hunter2" },
    ],
  );
  assert.deepEqual(response.objectVersions, [
    { id: "db/password", version: sha256("hunter2") },
    { id: "api-key", version: sha256("k-123") },
  ]);
});

Deno.test("a changed file gets a new version and the change is logged by id only", async () => {
  await using t = await setup();
  const objects = "- objectName: db/password\n- objectName: api-key";
  const first = await t.mount(objects);
  await Deno.writeTextFile(join(t.root, "db", "password"), "correct horse");
  const second = await t.mount(objects, first.objectVersions);

  assert.deepEqual(second.objectVersions, [
    { id: "db/password", version: sha256("correct horse") },
    { id: "api-key", version: sha256("k-123") },
  ]);
  const logged = t.lines.map((line) => JSON.parse(line)).find((l) => Array.isArray(l.changed));
  assert.deepEqual(logged?.changed, ["db/password"]);
  assert.ok(!t.lines.some((line) => line.includes("correct horse") || line.includes("hunter2")));
});

Deno.test("version names the local runtime and the driver version", async () => {
  await using t = await setup();
  assert.deepEqual(await t.client.version(LOCAL_PROVIDER_NAME, 2000), {
    version: "v1alpha1",
    runtimeName: "secrets-store-csi-local",
    runtimeVersion: DRIVER_VERSION,
  });
});

Deno.test("objects outside the root are rejected", async (t) => {
  await using s = await setup();
  await Deno.symlink(join(s.base, "outside"), join(s.root, "escape"));
  await Deno.symlink("../..", join(s.root, "db", "up"));
  await Deno.symlink("password", join(s.root, "db", "inside-link"));
  const cases: [string, RegExp][] = [
    ["../outside", /object "..\/outside" contains ".."/],
    ["db/../../outside", /contains ".."/],
    [join(s.base, "outside"), /is an absolute path/],
    ["escape", /object "escape" resolves outside the local provider's root/],
    ["db/up/outside", /object "db\/up\/outside" resolves outside/],
  ];
  for (const [objectName, message] of cases) {
    await t.step(objectName, async () => {
      const err = await providerCallError(s.mount(`- objectName: ${JSON.stringify(objectName)}`));
      assert.equal(err.code, GrpcStatus.INVALID_ARGUMENT);
      assert.match(err.message, message);
    });
  }
  await t.step("an alias cannot leave the mount", async () => {
    const err = await providerCallError(s.mount("- objectName: api-key\n  objectAlias: ../api-key"));
    assert.equal(err.code, GrpcStatus.INVALID_ARGUMENT);
    assert.match(err.message, /objectAlias "..\/api-key" contains ".."/);
  });
  await t.step("a symlink that stays inside the root is served", async () => {
    const response = await s.mount("- objectName: db/inside-link");
    assert.equal(text(response.files[0].contents), "hunter2");
  });
});

Deno.test("bad objects are INVALID_ARGUMENT or NOT_FOUND with a sentence", async (t) => {
  await using s = await setup();
  const cases: [string, GrpcStatus, RegExp][] = [
    ["- objectName: [unclosed", GrpcStatus.INVALID_ARGUMENT, /parameter "objects" is not valid YAML/],
    ["objectName: api-key", GrpcStatus.INVALID_ARGUMENT, /must be a non-empty YAML list/],
    ["- objectAlias: x", GrpcStatus.INVALID_ARGUMENT, /objects\[0\] has no objectName/],
    ["- objectName: api-key\n  mode: rwx", GrpcStatus.INVALID_ARGUMENT, /object "api-key" has mode "rwx"/],
    ["- objectName: api-key\n  mode: 01777", GrpcStatus.INVALID_ARGUMENT, /object "api-key" has mode/],
    [
      "- objectName: api-key\n- objectName: api-key",
      GrpcStatus.INVALID_ARGUMENT,
      /two objects are mounted as "api-key"/,
    ],
    ["- objectName: db", GrpcStatus.INVALID_ARGUMENT, /object "db" is not a regular file/],
    ["- objectName: nope", GrpcStatus.NOT_FOUND, /object "nope" not found under the local provider's root/],
    ["", GrpcStatus.INVALID_ARGUMENT, /parameter "objects" is missing/],
  ];
  await t.step("attributes that are not JSON", async () => {
    const request = {
      attributes: "{",
      secrets: "{}",
      targetPath: "/t",
      permission: "420",
      currentObjectVersion: [],
    };
    const err = await providerCallError(s.client.mount(LOCAL_PROVIDER_NAME, request, CTX));
    assert.equal(err.code, GrpcStatus.INVALID_ARGUMENT);
    assert.match(err.message, /the mount attributes are not valid JSON/);
  });
  for (const [objects, code, message] of cases) {
    await t.step(objects || "(empty)", async () => {
      const err = await providerCallError(s.mount(objects));
      assert.equal(err.code, code, err.message);
      assert.match(err.message, message);
      assert.match(err.message, /^provider "local" failed Mount for pod default\/demo: /);
    });
  }
});
