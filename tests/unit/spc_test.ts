import assert from "node:assert/strict";
import { join } from "node:path";
import { DriverError, GrpcStatus } from "../../lib/errors.ts";
import { SpcDirectory } from "../../lib/spc/files.ts";
import { toSecretProviderClass } from "../../lib/spc/parse.ts";

function spc(spec: Record<string, unknown>, apiVersion = "secrets-store.csi.x-k8s.io/v1") {
  return { apiVersion, kind: "SecretProviderClass", metadata: { name: "s", namespace: "ns" }, spec };
}

function assertCode(fn: () => unknown, code: GrpcStatus, pattern: RegExp) {
  assert.throws(fn, (err: DriverError) => {
    assert.equal(err.code, code);
    assert.match(err.message, pattern);
    return true;
  });
}

Deno.test("v1 and v1alpha1 SecretProviderClasses are read; provider and parameters are required", () => {
  for (const version of ["v1", "v1alpha1"]) {
    const parsed = toSecretProviderClass(
      spc({ provider: "vault", parameters: { a: "b" } }, `secrets-store.csi.x-k8s.io/${version}`),
      "f",
    );
    assert.deepEqual(parsed, {
      name: "s",
      namespace: "ns",
      provider: "vault",
      parameters: { a: "b" },
      secretObjects: [],
    });
  }
  assertCode(
    () => toSecretProviderClass(spc({ parameters: { a: "b" } }), "f"),
    GrpcStatus.INVALID_ARGUMENT,
    /provider not set in SecretProviderClass ns\/s/,
  );
  assertCode(
    () => toSecretProviderClass(spc({ provider: "p" }), "f"),
    GrpcStatus.INVALID_ARGUMENT,
    /parameters not set in SecretProviderClass ns\/s/,
  );
  assertCode(
    () => toSecretProviderClass(spc({ provider: "p", parameters: { n: 1 } }), "f"),
    GrpcStatus.INVALID_ARGUMENT,
    /spec.parameters.n .* must be a string/,
  );
  assertCode(
    () => toSecretProviderClass({ kind: "Pod" }, "f"),
    GrpcStatus.INVALID_ARGUMENT,
    /is not a secrets-store/,
  );
});

Deno.test("SpcDirectory finds an SPC by namespace and name among multi-document files", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(
      join(dir, "a.yaml"),
      `apiVersion: v1\nkind: ConfigMap\nmetadata: {name: s}\n---\n` +
        `apiVersion: secrets-store.csi.x-k8s.io/v1\nkind: SecretProviderClass\nmetadata: {name: s, namespace: ns}\n` +
        `spec: {provider: p, parameters: {k: v}}\n---\n` +
        `apiVersion: secrets-store.csi.x-k8s.io/v1\nkind: SecretProviderClass\nmetadata: {name: broken}\nspec: {}\n`,
    );
    await Deno.writeTextFile(join(dir, "notes.txt"), "not: [a manifest");
    const source = new SpcDirectory(dir);
    assert.equal((await source.get("ns", "s")).provider, "p");
    await assert.rejects(source.get("other", "s"), (err: DriverError) => {
      assert.equal(err.code, GrpcStatus.NOT_FOUND);
      assert.match(err.message, /secretproviderclass other\/s not found/);
      return true;
    });
    await assert.rejects(source.get("default", "broken"), /provider not set/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

const SPC_YAML = (name: string, parameters = "{k: v}") =>
  `apiVersion: secrets-store.csi.x-k8s.io/v1\nkind: SecretProviderClass\nmetadata: {name: ${name}, namespace: ns}\n` +
  `spec: {provider: p, parameters: ${parameters}}\n`;

Deno.test("SpcDirectory: an invalid YAML file fails only the classes it would define, in one line without its text", async () => {
  const dir = await Deno.makeTempDir();
  try {
    // Sorts before the good file: before, every lookup after it failed with its error.
    await Deno.writeTextFile(
      join(dir, "0-bad.yaml"),
      `${SPC_YAML("broken")}  token: hunter2-secret-value: [unclosed\n`,
    );
    await Deno.writeTextFile(join(dir, "1-good.yaml"), SPC_YAML("s"));
    const source = new SpcDirectory(dir);
    assert.equal((await source.get("ns", "s")).name, "s");
    await assert.rejects(source.get("ns", "broken"), (err: DriverError) => {
      assert.equal(err.code, GrpcStatus.NOT_FOUND);
      assert.match(
        err.message,
        /^secretproviderclass ns\/broken not found in .*; it may be in a file that cannot be read: .*0-bad\.yaml is not valid YAML: .* at line \d+, column \d+$/,
      );
      assert.ok(!err.message.includes("\n"), err.message);
      assert.ok(!err.message.includes("hunter2") && !err.message.includes("unclosed"), err.message);
      return true;
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("SpcDirectory: a class defined in two files is an error, whatever the file names", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(join(dir, "a.yaml"), SPC_YAML("s", "{from: a}"));
    await Deno.writeTextFile(join(dir, "b.json"), JSON.stringify(spcObject("s", { from: "b" })));
    await Deno.writeTextFile(join(dir, "c.yaml"), SPC_YAML("other"));
    const source = new SpcDirectory(dir);
    await assert.rejects(source.get("ns", "s"), (err: DriverError) => {
      assert.equal(err.code, GrpcStatus.FAILED_PRECONDITION);
      assert.match(
        err.message,
        /^secretproviderclass ns\/s is defined 2 times in .* \(a\.yaml, b\.json\): keep one definition$/,
      );
      return true;
    });
    assert.equal((await source.get("ns", "other")).name, "other");
    await Deno.remove(join(dir, "a.yaml"));
    assert.deepEqual((await source.get("ns", "s")).parameters, { from: "b" });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

function spcObject(name: string, parameters: Record<string, string>) {
  return {
    apiVersion: "secrets-store.csi.x-k8s.io/v1",
    kind: "SecretProviderClass",
    metadata: { name, namespace: "ns" },
    spec: { provider: "p", parameters },
  };
}
