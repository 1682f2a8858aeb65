import assert from "node:assert/strict";
import { createServer, type Server } from "node:net";
import { join } from "node:path";
import { DriverError, GrpcStatus } from "../../lib/errors.ts";
import { findProviderSocket, validateProviderName } from "../../lib/provider/discovery.ts";

/** Two provider directories and a way to put a listening socket in either. */
async function dirs() {
  const base = await Deno.makeTempDir({ prefix: "provider-discovery-" });
  const first = join(base, "first");
  const second = join(base, "second");
  await Deno.mkdir(first);
  await Deno.mkdir(second);
  const servers: Server[] = [];
  return {
    first,
    second,
    async listen(path: string): Promise<void> {
      const server = createServer();
      servers.push(server);
      await new Promise<void>((resolve) => server.listen(path, resolve));
    },
    async [Symbol.asyncDispose]() {
      await Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve))));
      await Deno.remove(base, { recursive: true });
    },
  };
}

async function rejection(promise: Promise<unknown>): Promise<DriverError> {
  try {
    await promise;
  } catch (err) {
    assert.ok(err instanceof DriverError, `expected a DriverError, got ${err}`);
    return err;
  }
  assert.fail("expected discovery to fail");
}

Deno.test("the first directory with the socket wins", async () => {
  await using d = await dirs();
  await d.listen(join(d.first, "vault.sock"));
  await d.listen(join(d.second, "vault.sock"));
  assert.equal(await findProviderSocket("vault", [d.first, d.second]), join(d.first, "vault.sock"));
});

Deno.test("the second directory is searched when the first has no socket", async () => {
  await using d = await dirs();
  await d.listen(join(d.second, "vault.sock"));
  assert.equal(await findProviderSocket("vault", [d.first, d.second]), join(d.second, "vault.sock"));
});

Deno.test("not found names every directory searched and the socket file expected", async () => {
  await using d = await dirs();
  await d.listen(join(d.first, "azure.sock"));
  const err = await rejection(findProviderSocket("vault", [d.first, d.second]));
  assert.equal(err.code, GrpcStatus.UNAVAILABLE);
  assert.equal(
    err.message,
    `provider "vault" not found: no vault.sock in ${d.first}, ${d.second}; ` +
      "is the provider's DaemonSet running on this node?",
  );
});

Deno.test("a path that is not a socket is skipped and said so", async () => {
  await using d = await dirs();
  await Deno.writeTextFile(join(d.first, "vault.sock"), "not a socket");
  const err = await rejection(findProviderSocket("vault", [d.first, d.second]));
  assert.match(
    err.message,
    new RegExp(`no vault\\.sock in ${d.second}; ${d.first}/vault\\.sock exists but is not a socket`),
  );

  await d.listen(join(d.second, "vault.sock"));
  assert.equal(await findProviderSocket("vault", [d.first, d.second]), join(d.second, "vault.sock"));
});

Deno.test("a directory that does not exist counts as searched", async () => {
  await using d = await dirs();
  const err = await rejection(findProviderSocket("vault", [join(d.first, "missing")]));
  assert.match(err.message, /no vault\.sock in .*\/first\/missing;/);
});

Deno.test("invalid provider names are INVALID_ARGUMENT naming the name", async () => {
  for (const name of ["../etc/passwd", "a/b", "vault.sock", "has space", "x".repeat(31), "ünï"]) {
    const err = await rejection(findProviderSocket(name, ["/nonexistent"]));
    assert.equal(err.code, GrpcStatus.INVALID_ARGUMENT, name);
    assert.ok(err.message.includes(JSON.stringify(name)), err.message);
  }
});

Deno.test("an empty provider name is rejected as spec.provider is empty", () => {
  assert.throws(
    () => validateProviderName(""),
    (err) =>
      err instanceof DriverError && err.code === GrpcStatus.INVALID_ARGUMENT &&
      /spec\.provider is empty/.test(err.message),
  );
});

Deno.test("names of up to 30 letters, digits, '_' and '-' are valid", () => {
  for (const name of ["local", "azure", "gcp", "vault_1", "a-b", "x".repeat(30), "A9"]) {
    validateProviderName(name);
  }
});
