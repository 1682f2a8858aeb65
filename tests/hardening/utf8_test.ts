/**
 * Invalid UTF-8 in a string field is refused, not decoded into U+FFFD: a CSI request whose target path,
 * volume context or secrets hold a byte that is not UTF-8 is INVALID_ARGUMENT naming the field, and a
 * provider answer whose file name or object version does is a provider error; nothing is mounted or
 * written (lib/proto.ts). Before, `bad\xffname` was written as `bad\uFFFDname` and a target path with
 * `\xff` was mounted at its U+FFFD spelling while kubelet's real path stayed empty. Needs root.
 */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { join } from "node:path";
import * as grpc from "@grpc/grpc-js";
import protobuf from "protobufjs";
import { guardServerSessions } from "../../lib/http2-goaway-guard.ts";
import csiSource from "../../proto/csi.proto" with { type: "text" };
import providerSource from "../../proto/provider.proto" with { type: "text" };
import { type GrpcFailure, grpcFailure, type TestDriver, withTestDriver } from "../support/driver.ts";

/** Stands for the invalid byte while a message is encoded; its first byte becomes 0xff afterwards. */
const MARK = "Z9Q7";

/** `message` encoded as `type`, with MARK's first byte (once, the only occurrence) replaced by 0xff. */
function encodeWithInvalidByte(type: protobuf.Type, message: Record<string, unknown>): Uint8Array {
  const bytes = type.encode(type.fromObject(message)).finish();
  const mark = new TextEncoder().encode(MARK);
  const at = bytes.findIndex((_, i) => mark.every((b, j) => bytes[i + j] === b));
  assert.ok(at >= 0, "the mark is not in the encoded message");
  bytes[at] = 0xff;
  return bytes;
}

function protoType(source: string, name: string): protobuf.Type {
  const root = protobuf.parse(source, { keepCase: true }).root;
  for (const file of ["google/protobuf/wrappers.proto", "google/protobuf/descriptor.proto"]) {
    const wellKnown = protobuf.common.get(file);
    if (wellKnown?.nested) root.addJSON(wellKnown.nested);
  }
  return root.lookupType(name);
}

const PUBLISH = "/csi.v1.Node/NodePublishVolume";

/** Sends NodePublishVolume as raw bytes (a JS client cannot put invalid UTF-8 in a string). */
function publishRaw(d: TestDriver, bytes: Uint8Array): Promise<unknown> {
  const client = new grpc.Client(`unix:${join(d.dir, "csi.sock")}`, grpc.credentials.createInsecure());
  return new Promise<unknown>((resolve, reject) => {
    client.makeUnaryRequest(
      PUBLISH,
      (b: Uint8Array) => Buffer.from(b),
      (b: Buffer) => b,
      bytes,
      (err, response) => err ? reject(err) : resolve(response),
    );
  }).finally(() => client.close());
}

async function assertNothingMounted(d: TestDriver): Promise<void> {
  assert.deepEqual(await d.mounts(), [], "a mount was made");
}

const publishType = protoType(csiSource, "csi.v1.NodePublishVolumeRequest");

/** A kubelet-shaped request whose `field` (a function of the request) holds the mark. */
function requestWithMark(d: TestDriver, pod: string, mark: (r: Record<string, unknown>) => void) {
  const request = d.publishRequest(pod) as unknown as Record<string, unknown>;
  mark(request);
  return encodeWithInvalidByte(publishType, request);
}

const REQUEST_CASES: [string, string, (r: Record<string, unknown>) => void][] = [
  ["the target path", "target_path", (r) => r.target_path = `${r.target_path}${MARK}`],
  ["a volume context value", "volume_context (a value)", (r) => {
    (r.volume_context as Record<string, string>)["csi.storage.k8s.io/pod.name"] = `web${MARK}`;
  }],
  ["a volume context key", "volume_context (a key)", (r) => {
    (r.volume_context as Record<string, string>)[`extra${MARK}`] = "x";
  }],
  ["a secret key", "secrets (a key)", (r) => r.secrets = { [`token${MARK}`]: "t" }],
  ["the volume id", "volume_id", (r) => r.volume_id = `csi-${MARK}`],
];

for (const [what, field, mark] of REQUEST_CASES) {
  Deno.test(`a NodePublishVolume with invalid UTF-8 in ${what} is INVALID_ARGUMENT and mounts nothing`, () =>
    withTestDriver(async (d) => {
      const err = await grpcFailure(publishRaw(d, requestWithMark(d, "utf8", mark))) as GrpcFailure;
      assert.equal(err.code, grpc.status.INVALID_ARGUMENT, err.details);
      assert.equal(err.details, `${field} in the NodePublishVolume request is not valid UTF-8`);
      await assertNothingMounted(d);
      assert.equal(d.provider.mountRequests.length, 0, "the provider was called");
      // The U+FFFD spelling of the target path was not created either.
      const lossy = `${d.target("utf8")}\uFFFD${MARK.slice(1)}`;
      await assert.rejects(Deno.lstat(lossy), Deno.errors.NotFound);
    }));
}

const mountResponseType = protoType(providerSource, "v1alpha1.MountResponse");

/** A provider named `raw` whose Mount always answers `response` as it is. */
async function withRawProvider(
  d: TestDriver,
  response: Uint8Array,
  fn: () => Promise<void>,
): Promise<void> {
  const server = new grpc.Server();
  const passThrough = (b: Uint8Array) => Buffer.from(b);
  server.addService({
    Mount: {
      path: "/v1alpha1.CSIDriverProvider/Mount",
      requestStream: false,
      responseStream: false,
      requestSerialize: passThrough,
      requestDeserialize: passThrough,
      responseSerialize: passThrough,
      responseDeserialize: passThrough,
    },
  }, {
    Mount: (_call: unknown, callback: grpc.sendUnaryData<Uint8Array>) => callback(null, response),
  });
  await new Promise<void>((resolve, reject) =>
    server.bindAsync(
      `unix:${join(d.providerDir, "raw.sock")}`,
      grpc.ServerCredentials.createInsecure(),
      (err) => err ? reject(err) : resolve(),
    )
  );
  guardServerSessions(server);
  try {
    await d.addSpc("spc-raw", "raw");
    await fn();
  } finally {
    server.forceShutdown();
  }
}

const RESPONSE_CASES: [string, string, Record<string, unknown>][] = [
  ["a file path", "files[0].path", {
    object_version: [{ id: "a", version: "1" }],
    files: [{ path: `bad${MARK}name`, mode: 0o644, contents: new Uint8Array([1]) }],
  }],
  ["the second file's path", "files[1].path", {
    object_version: [{ id: "a", version: "1" }],
    files: [
      { path: "good", mode: 0o644, contents: new Uint8Array([1]) },
      { path: `bad${MARK}`, mode: 0o644, contents: new Uint8Array([1]) },
    ],
  }],
  ["an object version", "object_version[0].version", {
    object_version: [{ id: "a", version: `v${MARK}` }],
    files: [{ path: "a", mode: 0o644, contents: new Uint8Array([1]) }],
  }],
  ["the error code", "error.code", { error: { code: `Denied${MARK}` } }],
];

for (const [what, field, response] of RESPONSE_CASES) {
  Deno.test(`a provider answer with invalid UTF-8 in ${what} is a provider error and writes nothing`, () =>
    withTestDriver((d) =>
      withRawProvider(d, encodeWithInvalidByte(mountResponseType, response), async () => {
        const err = await grpcFailure(d.client.nodePublishVolume(d.publishRequest("raw", "spc-raw")));
        assert.equal(err.code, grpc.status.INTERNAL, err.details);
        assert.equal(
          err.details,
          `provider "raw" answered Mount for pod default/raw with invalid UTF-8 in MountResponse.${field}`,
        );
        await assertNothingMounted(d);
        for await (const entry of Deno.readDir(d.target("raw"))) {
          assert.fail(`${entry.name} left in the target`);
        }
      })
    ));
}
