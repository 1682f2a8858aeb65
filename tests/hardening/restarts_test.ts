/**
 * Faults and restarts with the driver as a real process (`main.ts node`): killed in the middle of a
 * publish and started again, its provider killed and restarted under load, a volume's tmpfs full. After
 * each, kubelet's retries must converge and no mount may be orphaned. Needs root.
 */
import assert from "node:assert/strict";
import { status } from "@grpc/grpc-js";
import { join } from "node:path";
import type { CsiClient } from "../../lib/csi/client.ts";
import { isMountPoint } from "../../lib/mount/mountinfo.ts";
import { createNode, type HardeningNode } from "../support/hardening-node.ts";
import { startProviderProcess } from "../support/hardening-provider.ts";
import { requireRoot } from "../support/root.ts";
import { TestProvider } from "../support/test-provider.ts";

async function withNode(fn: (node: HardeningNode) => Promise<void>): Promise<void> {
  requireRoot();
  const node = await createNode();
  try {
    await fn(node);
  } finally {
    await node.close();
  }
}

interface GrpcFailure {
  code: number;
  details: string;
}

async function unpublish(client: CsiClient, node: HardeningNode, pod: string): Promise<void> {
  await client.nodeUnpublishVolume({ volume_id: `csi-${pod}`, target_path: node.target(pod) });
  await assert.rejects(Deno.lstat(node.target(pod)), Deno.errors.NotFound);
}

Deno.test("a driver killed mid-publish and restarted: the retry publishes, every unpublish works", () =>
  withNode(async (node) => {
    const provider = await TestProvider.start(node.providerDir, "slow");
    try {
      await node.writeSpc("spc-slow", "slow");
      let driver = await node.startDriver();
      let client = node.connect();
      const earlier = ["early-0", "early-1", "early-2"];
      for (const pod of earlier) await client.nodePublishVolume(node.publishRequest(pod, "spc-slow"));

      provider.behaviour = { hang: true };
      const inFlight = client.nodePublishVolume(node.publishRequest("victim", "spc-slow")).then(
        () => undefined,
        (err: GrpcFailure) => err,
      );
      // The tmpfs is mounted before the provider is called: kill the driver while the call is open.
      while (provider.mountRequests.length < earlier.length + 1) await new Promise((r) => setTimeout(r, 10));
      assert.ok(await isMountPoint(node.target("victim")));
      const killed = await driver.stop("SIGKILL");
      assert.equal(killed.signal, "SIGKILL");
      assert.equal((await inFlight)?.code, status.UNAVAILABLE);
      client.close();

      provider.behaviour = { files: [{ path: "secret", contents: "after-restart" }] };
      driver = await node.startDriver();
      client = node.connect();
      // kubelet retries the failed publish with the same request: it must end with the files in place,
      // not with the empty tmpfs the killed driver left mounted.
      await client.nodePublishVolume(node.publishRequest("victim", "spc-slow"));
      assert.equal(await Deno.readTextFile(join(node.target("victim"), "secret")), "after-restart");
      // The volumes published before the kill still show their files and unpublish cleanly.
      for (const pod of earlier) {
        assert.equal(await Deno.readTextFile(join(node.target(pod), "secret")), "s3cr3t");
        await unpublish(client, node, pod);
      }
      await unpublish(client, node, "victim");
      assert.deepEqual(await node.mounts(), []);
      assert.equal(driver.status(), undefined, "the restarted driver died");
    } finally {
      await provider.close();
    }
  }));

Deno.test("a provider killed under load: clean errors, then publishes work without restarting the driver", () =>
  withNode(async (node) => {
    const socket = join(node.providerDir, "flaky.sock");
    await node.writeSpc("spc-flaky", "flaky");
    const driver = await node.startDriver(["--provider-timeout=4s"]);
    const client = node.connect();
    let provider = await startProviderProcess({ socket, delayMs: 60_000 });
    const pods = Array.from({ length: 8 }, (_, i) => `pod-${i}`);
    const outcomes = pods.map((pod) =>
      client.nodePublishVolume(node.publishRequest(pod, "spc-flaky")).then(
        () => undefined,
        (err: GrpcFailure) => err,
      )
    );
    await provider.waitForLine(new RegExp(`^mount ${pods.length}$`));
    await provider.stop("SIGKILL");
    for (const [i, outcome] of (await Promise.all(outcomes)).entries()) {
      const err = outcome ?? assert.fail(`${pods[i]} was published by a killed provider`);
      // Final (UNKNOWN), not UNAVAILABLE or DEADLINE_EXCEEDED: the driver has unmounted (lib/csi/codes.ts).
      assert.equal(err.code, status.UNKNOWN, err.details);
      assert.match(err.details, new RegExp(`provider "flaky" .*pod default/${pods[i]}`));
    }
    assert.deepEqual(await node.mounts(), [], "failed publishes left mounts");

    provider = await startProviderProcess({ socket });
    try {
      // kubelet's retries and new pods alike, on the same driver process.
      for (const pod of [...pods, "new-pod"]) {
        await client.nodePublishVolume(node.publishRequest(pod, "spc-flaky"));
        assert.equal(await Deno.readTextFile(join(node.target(pod), "file-0")), "secret-0");
      }
      for (const pod of [...pods, "new-pod"]) await unpublish(client, node, pod);
    } finally {
      await provider.stop();
    }
    assert.deepEqual(await node.mounts(), []);
    assert.equal(driver.status(), undefined, "the driver died");
  }));

Deno.test("a full tmpfs is a clear error with nothing half-written and no mount left", () =>
  withNode(async (node) => {
    const socket = join(node.providerDir, "big.sock");
    await node.writeSpc("spc-big", "big");
    // 64 KiB hold 16 pages: 40 one-line files need 40, though their bytes are far under the cap. A payload
    // is accepted only if it fits twice (a rotation holds two), so this one is refused before any write.
    await node.startDriver(["--tmpfs-size=64Ki"]);
    const client = node.connect();
    const provider = await startProviderProcess({ socket, files: 40 });
    try {
      const err = await client.nodePublishVolume(node.publishRequest("full", "spc-big")).then(
        () => assert.fail("publishing into a full tmpfs succeeded"),
        (e: GrpcFailure) => e,
      );
      assert.equal(err.code, status.INTERNAL, err.details);
      assert.match(
        err.details,
        /the provider payload \(40 files\) needs 164 KiB of the volume's tmpfs, .* at most 32 KiB is accepted/,
      );
      assert.deepEqual(await node.mounts(), []);
      for await (const entry of Deno.readDir(node.target("full"))) assert.fail(`${entry.name} was left`);
      // The same driver still publishes what fits.
      await client.nodeUnpublishVolume({ volume_id: "csi-full", target_path: node.target("full") });
    } finally {
      await provider.stop();
    }
    const small = await startProviderProcess({ socket, files: 3 });
    try {
      await client.nodePublishVolume(node.publishRequest("fits", "spc-big"));
      assert.equal(await Deno.readTextFile(join(node.target("fits"), "file-2")), "secret-2");
      await unpublish(client, node, "fits");
    } finally {
      await small.stop();
    }
    assert.deepEqual(await node.mounts(), []);
  }));
