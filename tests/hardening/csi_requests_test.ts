/**
 * Bad and hostile CSI requests over the real socket: missing fields, huge volume contexts, strange
 * characters, target paths a privileged driver must never touch. Each gets a clear gRPC error (or, where
 * acceptable, reaches the provider intact), leaves no mount and the driver serves on. Needs root.
 */
import assert from "node:assert/strict";
import { status } from "@grpc/grpc-js";
import type { NodePublishVolumeRequest } from "../../lib/csi/node.ts";
import { readMountinfo } from "../../lib/mount/mountinfo.ts";
import { grpcFailure, type TestDriver, withTestDriver } from "../support/driver.ts";

/** The driver still publishes and unpublishes after whatever came before. */
async function assertServing(d: TestDriver): Promise<void> {
  await d.client.nodePublishVolume(d.publishRequest("still-serving"));
  await d.client.nodeUnpublishVolume({ volume_id: "v", target_path: d.target("still-serving") });
  assert.deepEqual(await d.mounts(), []);
}

/**
 * The machine's mounts outside the temporary directory: the ones a refused target could have touched. The
 * tests that run beside this one (--parallel) mount and unmount tmpfs in their own temporary directories.
 */
async function systemMounts(): Promise<string[]> {
  const tmp = `${Deno.env.get("TMPDIR") ?? "/tmp"}/`;
  return (await readMountinfo()).map((m) => m.mountPoint).filter((p) => !p.startsWith(tmp)).sort();
}

Deno.test("requests with missing or empty fields get upstream's INVALID_ARGUMENT messages", () =>
  withTestDriver(async (d) => {
    const ok = d.publishRequest("p");
    const publish: [Partial<NodePublishVolumeRequest>, RegExp][] = [
      [{ ...ok, volume_capability: undefined }, /^Volume capability missing in request$/],
      [{ ...ok, volume_id: "" }, /^Volume ID missing in request$/],
      [{ ...ok, target_path: "" }, /^Target path missing in request$/],
      [{ ...ok, volume_context: {} }, /^Volume attributes missing in request$/],
      [{ ...ok, readonly: false }, /^Readonly is not true in request$/],
      [{}, /^Volume capability missing in request$/],
      [{ ...ok, volume_context: { "csi.storage.k8s.io/pod.name": "p" } }, /secretProviderClass is not set/],
    ];
    for (const [request, message] of publish) {
      const err = await grpcFailure(d.client.nodePublishVolume(request));
      assert.equal(err.code, status.INVALID_ARGUMENT, err.details);
      assert.match(err.details, message);
    }
    const others: [Promise<unknown>, RegExp][] = [
      [d.client.nodeUnpublishVolume({ target_path: d.target("p") }), /^Volume ID missing in request$/],
      [d.client.nodeUnpublishVolume({ volume_id: "v" }), /^Target path missing in request$/],
      [d.client.nodeStageVolume({ volume_id: "v", volume_capability: { mount: {} } }), /Target path missing/],
      [d.client.nodeUnstageVolume({ staging_target_path: "/s" }), /^Volume ID missing in request$/],
    ];
    for (const [call, message] of others) {
      const err = await grpcFailure(call);
      assert.equal(err.code, status.INVALID_ARGUMENT, err.details);
      assert.match(err.details, message);
    }
    assert.deepEqual(d.provider.mountRequests, []);
    assert.deepEqual(await d.mounts(), []);
    await assertServing(d);
  }));

Deno.test("target paths under /proc, /sys, /dev or / are refused for publish and unpublish alike", () =>
  withTestDriver(async (d) => {
    const mountsBefore = await systemMounts();
    const paths = [
      "/",
      "//",
      "/proc",
      "/proc/self/root",
      "/sys/fs/cgroup",
      "/sys/kernel/security",
      "/dev",
      "/dev/shm",
      "/dev/mqueue",
      "//proc/x",
      "/./sys/x",
      "/etc/kubernetes",
      `${d.dir}/../../proc/x`,
      "relative/target",
      `${d.dir}/a\0b`,
    ];
    for (const path of paths) {
      const publish = await grpcFailure(
        d.client.nodePublishVolume({ ...d.publishRequest("p"), target_path: path }),
      );
      assert.equal(publish.code, status.INVALID_ARGUMENT, `${JSON.stringify(path)}: ${publish.details}`);
      assert.match(publish.details, /target path/);
      // An unpublish must never unmount /dev/shm or a cgroup file system either.
      const unpublish = await grpcFailure(
        d.client.nodeUnpublishVolume({ volume_id: "v", target_path: path }),
      );
      assert.equal(unpublish.code, status.INVALID_ARGUMENT, `${JSON.stringify(path)}: ${unpublish.details}`);
    }
    assert.deepEqual(await systemMounts(), mountsBefore, "the mount table changed");
    assert.deepEqual(d.provider.mountRequests, []);
  }));

Deno.test("a volume context of 1,000 keys and of 1 MiB reaches the provider intact", () =>
  withTestDriver(async (d) => {
    const thousand: Record<string, string> = {};
    for (let i = 0; i < 1000; i++) thousand[`key-${i}`] = `value-${i}`;
    const big: Record<string, string> = {};
    for (let i = 0; i < 1024; i++) big[`big-${i}`] = String(i % 10).repeat(1024);
    for (const [pod, extra] of [["thousand", thousand], ["mebibyte", big]] as const) {
      const request = d.publishRequest(pod);
      request.volume_context = { ...request.volume_context, ...extra };
      await d.client.nodePublishVolume(request);
      const attributes = JSON.parse(d.provider.mountRequests.at(-1)!.attributes);
      for (const [key, value] of Object.entries(extra)) assert.equal(attributes[key], value, key);
      await d.client.nodeUnpublishVolume({ volume_id: "v", target_path: d.target(pod) });
    }
    assert.deepEqual(await d.mounts(), []);
  }));

Deno.test("a CSI request over gRPC's 4 MiB receive limit is RESOURCE_EXHAUSTED and changes nothing", () =>
  withTestDriver(async (d) => {
    const request = d.publishRequest("huge");
    request.volume_context = { ...request.volume_context, huge: "x".repeat(5 * 1024 * 1024) };
    const err = await grpcFailure(d.client.nodePublishVolume(request));
    assert.equal(err.code, status.RESOURCE_EXHAUSTED, err.details);
    assert.deepEqual(d.provider.mountRequests, []);
    await assert.rejects(Deno.lstat(d.target("huge")), Deno.errors.NotFound);
    await assertServing(d);
  }));

Deno.test("a volume context that JSON escaping inflates past the provider's limit fails clearly", () =>
  withTestDriver(async (d) => {
    // 1 MiB of control characters: 6 MiB once escaped as \u0001 in the attributes JSON. The provider
    // refuses the request; the error must not blame the provider's answer.
    const request = d.publishRequest("inflated");
    request.volume_context = { ...request.volume_context, control: "\u0001".repeat(1024 * 1024) };
    const err = await grpcFailure(d.client.nodePublishVolume(request));
    // The provider's RESOURCE_EXHAUSTED reaches kubelet as a final code (lib/csi/codes.ts).
    assert.equal(err.code, status.UNKNOWN, err.details);
    assert.match(err.details, /over the provider's \d+-byte receive limit/);
    assert.doesNotMatch(err.details, /answered Mount/, "the request was too large, not the response");
    assert.match(err.details, /request/i);
    assert.deepEqual(await d.mounts(), []);
    await assertServing(d);
  }));

Deno.test("quotes, backslashes, U+2028/2029, NUL, HTML characters and emoji reach the provider intact", () =>
  withTestDriver(async (d) => {
    const weird = {
      quotes: `"quoted" 'single' \`back\``,
      backslashes: "C:\\path\\to\\file \\u0041 \\n",
      separators: "line\u2028paragraph\u2029end",
      controls: "nul\0 bell\u0007 tab\t newline\n",
      html: "<script>alert('&amp;')</script>",
      unicode: "é ß 中文 😀 \u{10FFFF} \uFEFF",
      json: '{"nested": ["not", "parsed"]}',
      'key with "quotes" and \u2028': "value",
    };
    await d.addSpc("spc-weird", "test", weird);
    const request = d.publishRequest("weird", "spc-weird");
    request.volume_context = { ...request.volume_context, contextQuotes: '"}{"', contextSeparator: "\u2028" };
    request.secrets = { "secret-key": 'pa"ss\\word\u2029' };
    await d.client.nodePublishVolume(request);
    const received = d.provider.mountRequests.at(-1)!;
    const attributes = JSON.parse(received.attributes);
    for (const [key, value] of Object.entries(weird)) assert.equal(attributes[key], value, key);
    assert.equal(attributes.contextQuotes, '"}{"');
    assert.equal(attributes.contextSeparator, "\u2028");
    assert.deepEqual(JSON.parse(received.secrets), request.secrets);
    // Like Go's json.Marshal, U+2028/2029 and <, >, & travel escaped.
    assert.doesNotMatch(received.attributes, /[\u2028\u2029<>&]/);
    await d.client.nodeUnpublishVolume({ volume_id: "v", target_path: d.target("weird") });
  }));
