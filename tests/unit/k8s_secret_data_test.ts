/** lib/k8s/secret-data.ts and tls-pem.ts: secretObjects → Secret, upstream's checks and its TLS split. */
import assert from "node:assert/strict";
import { generateKeyPairSync } from "node:crypto";
import { desiredSecret, MANAGED_LABEL, SECRET_TYPES, SecretObjectError } from "../../lib/k8s/secret-data.ts";
import { certificatePart, decodePem, encodePem, privateKeyPart, tlsPart } from "../../lib/k8s/tls-pem.ts";
import type { ProviderFile } from "../../lib/volume/ports.ts";

const enc = (s: string) => new TextEncoder().encode(s);
const dec = (b: Uint8Array) => new TextDecoder().decode(b);
const file = (path: string, contents: string): ProviderFile => ({
  path,
  mode: 0o644,
  contents: enc(contents),
});
const FILES = [file("user", "admin"), file("dir/pw", "p4ss")];

function rejects(secretObject: unknown, reason: string, pattern: RegExp): void {
  assert.throws(() => desiredSecret(secretObject, 2, "ns/spc", FILES), (err: unknown) => {
    assert.ok(err instanceof SecretObjectError);
    assert.equal(err.reason, reason);
    assert.match(err.message, /^secretObjects\[2\] of secretproviderclass ns\/spc: /);
    assert.match(err.message, pattern);
    return true;
  });
}

Deno.test("desiredSecret: names, type, labels with the managed label, annotations and data from mounted files", () => {
  const secret = desiredSecret(
    {
      secretName: " creds ",
      type: "kubernetes.io/basic-auth",
      labels: { app: "x", [MANAGED_LABEL]: "false" },
      annotations: { note: "n" },
      data: [{ objectName: "user", key: "username" }, { objectName: "dir/pw", key: " password " }],
    },
    0,
    "ns/spc",
    FILES,
  );
  assert.equal(secret.name, "creds");
  assert.equal(secret.type, "kubernetes.io/basic-auth");
  assert.deepEqual(secret.labels, { app: "x", [MANAGED_LABEL]: "true" });
  assert.deepEqual(secret.annotations, { note: "n" });
  assert.deepEqual(Object.fromEntries(Object.entries(secret.data).map(([k, v]) => [k, dec(v)])), {
    username: "admin",
    password: "p4ss",
  });
  // Every upstream type, and any other string, passes through as given.
  for (const type of [...SECRET_TYPES, "example.com/custom"]) {
    if (type === "kubernetes.io/tls") continue;
    const data = [{ objectName: "user", key: "k" }];
    assert.equal(desiredSecret({ secretName: "s", type, data }, 0, "ns/spc", FILES).type, type);
  }
});

Deno.test("desiredSecret: upstream's checks become errors that name the entry and what is wrong", () => {
  const data = [{ objectName: "user", key: "k" }];
  rejects("text", "InvalidSecretObject", /is not an object/);
  rejects({ type: "Opaque", data }, "InvalidSecretObject", /secretName is empty/);
  rejects({ secretName: "s", data }, "InvalidSecretObject", /type is empty/);
  rejects({ secretName: "s", type: "Opaque" }, "InvalidSecretObject", /data is empty/);
  rejects(
    { secretName: "s", type: "Opaque", data: [{ key: "k" }] },
    "InvalidSecretObject",
    /data\[0\]\.objectName is empty/,
  );
  rejects(
    { secretName: "s", type: "Opaque", data: [{ objectName: "user" }] },
    "InvalidSecretObject",
    /data\[0\]\.key is empty/,
  );
  rejects(
    { secretName: "s", type: "Opaque", data, labels: { a: 1 } },
    "InvalidSecretObject",
    /labels must be a map/,
  );
  rejects(
    { secretName: "s", type: "Opaque", data: [{ objectName: "nope", key: "k" }] },
    "SecretObjectNotMounted",
    /file matching objectName nope not found in the pod \(secret s, key k\)/,
  );
  rejects(
    { secretName: "s", type: "kubernetes.io/tls", data: [{ objectName: "user", key: "tls.crt" }] },
    "InvalidTLSData",
    /cannot build tls\.crt of kubernetes\.io\/tls secret s from user: it holds no PEM CERTIFICATE block/,
  );
});

const CERT_A = encodePem({ type: "CERTIFICATE", headers: [], bytes: new Uint8Array(100).fill(1) });
const CERT_B = encodePem({ type: "CERTIFICATE", headers: [], bytes: new Uint8Array(3).fill(2) });

Deno.test("tls: tls.crt is every CERTIFICATE block in order, re-encoded in 64-column lines", () => {
  const messy = CERT_A.replace(/\n(?!-)/g, "\r\n").replace("-----\r\n", "-----\n");
  const bundle = `junk\n${messy}-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n${CERT_B}`;
  assert.equal(dec(certificatePart(enc(bundle))), CERT_A + CERT_B);
  assert.ok(CERT_A.split("\n").every((line) => line.length <= 64));
  assert.deepEqual(decodePem(CERT_B)[0].bytes, new Uint8Array([2, 2, 2]));
  assert.throws(() => tlsPart(enc(bundle), "ca.crt"), /key 'ca\.crt' is not supported/);
});

Deno.test("tls: tls.key is the last key block as PKCS#1 (RSA) or SEC 1 (EC), as Go re-marshals it", () => {
  const rsa = generateKeyPairSync("rsa", { modulusLength: 1024 }).privateKey;
  const rsaPkcs8 = rsa.export({ type: "pkcs8", format: "pem" }) as string;
  const rsaPkcs1 = rsa.export({ type: "pkcs1", format: "pem" }) as string;
  assert.equal(dec(privateKeyPart(enc(CERT_A + rsaPkcs8))), rsaPkcs1);
  assert.equal(dec(privateKeyPart(enc(rsaPkcs1 + CERT_A))), rsaPkcs1, "PKCS#1 stays as it is");

  for (const namedCurve of ["P-256", "P-384"]) {
    const ec = generateKeyPairSync("ec", { namedCurve }).privateKey;
    const sec1 = ec.export({ type: "sec1", format: "pem" }) as string;
    const pkcs8 = ec.export({ type: "pkcs8", format: "pem" }) as string;
    assert.equal(dec(privateKeyPart(enc(`${CERT_A}${pkcs8}`))), sec1, namedCurve);
    assert.equal(dec(privateKeyPart(enc(sec1))), sec1, namedCurve);
  }
  // The last key wins, as upstream's loop keeps the last non-certificate block.
  assert.equal(dec(privateKeyPart(enc(rsaPkcs8 + CERT_A + rsaPkcs1))), rsaPkcs1);
  assert.throws(() => privateKeyPart(enc(CERT_A)), /no PEM private key block/);
  const ed = generateKeyPairSync("ed25519").privateKey.export({ type: "pkcs8", format: "pem" }) as string;
  assert.throws(() => privateKeyPart(enc(ed)), /PRIVATE KEY block is not an RSA or EC private key/);
});
