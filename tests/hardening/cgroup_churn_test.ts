/**
 * Pod churn inside the DaemonSet's memory limit: the production driver (the bundle with the production
 * V8 flags) runs in a memory cgroup limited to the driver container's limit (tools/production.ts,
 * manifests/daemonset.yaml) and serves 20,000 publish/unpublish cycles, 8 in flight. It must survive: no
 * OOM kill, still answering, no mount left. Standalone mode (`--spc-dir`): in cluster mode every cycle
 * makes three API calls (SPCPS create, then get + update on unpublish) and the client-side rate limit of
 * 20 requests/s would stretch 20,000 cycles to about 50 minutes; the cluster-mode footprint (client
 * loaded, caches filled) is measured in the same cgroup by the bench (`memory.cgroup`). Without heap limits V8 sizes its heap from the host's RAM and the
 * driver is killed long before that (issue: after ~1,500 cycles at 128 MiB). CHURN_CYCLES overrides the
 * count when debugging. How much memory it peaked at is printed, not asserted (bench/ measures it).
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { DAEMONSET_MEMORY_LIMIT_MIB } from "../../tools/production.ts";
import { createNode, spawnMain } from "../support/hardening-node.ts";
import { createMemoryCgroup } from "../support/memory-cgroup.ts";
import { requireRoot } from "../support/root.ts";

const CYCLES = Number(Deno.env.get("CHURN_CYCLES") ?? 20_000);
const IN_FLIGHT = 8;
const MIB = 1024 * 1024;

Deno.test({
  name:
    `cgroup churn: ${CYCLES} publish/unpublish cycles within the DaemonSet's ${DAEMONSET_MEMORY_LIMIT_MIB} MiB`,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    requireRoot();
    const node = await createNode();
    const cgroup = await createMemoryCgroup(DAEMONSET_MEMORY_LIMIT_MIB * MIB);
    try {
      const root = join(node.dir, "secrets");
      await Deno.mkdir(join(root, "db"), { recursive: true });
      await Deno.writeTextFile(join(root, "db/username"), "app");
      await Deno.writeTextFile(join(root, "db/password"), "p".repeat(1536));
      await Deno.writeTextFile(join(root, "api-token"), "t".repeat(2048));
      await node.writeSpc("churn", "local", {
        objects: "- objectName: db/username\n- objectName: db/password\n- objectName: api-token",
      });

      const provider = spawnMain([
        "provider",
        "local",
        "--provider-volume",
        node.providerDir,
        "--root",
        root,
      ]);
      await provider.waitForLine(/local provider listening/, 60_000);
      const driver = spawnMain(
        [
          "node",
          "--endpoint",
          node.endpoint,
          "--nodeid",
          "churn",
          "--provider-volume",
          node.providerDir,
          "--additional-provider-volume-paths=",
          "--spc-dir",
          node.spcDir,
          `--kubelet-root-dir=${node.dir}`,
          "--metrics-addr=127.0.0.1:0",
        ],
        [],
        cgroup.wrap,
      );
      await driver.waitForLine(/listening for CSI calls/, 60_000);
      const client = node.connect();

      let next = 0;
      const started = performance.now();
      const lane = async (lane: number) => {
        while (next < CYCLES) {
          const pod = `churn-${lane}-${next++ % 4}`;
          await client.nodePublishVolume(node.publishRequest(pod, "churn"));
          await client.nodeUnpublishVolume({ volume_id: `csi-${pod}`, target_path: node.target(pod) });
        }
      };
      await Promise.all(Array.from({ length: IN_FLIGHT }, (_, i) => lane(i)));
      const seconds = (performance.now() - started) / 1000;

      const memory = await cgroup.read();
      console.log(
        `cgroup churn: ${CYCLES} cycles in ${seconds.toFixed(0)} s; cgroup peak ${
          (memory.peak / MIB).toFixed(1)
        } ` +
          `MiB of ${DAEMONSET_MEMORY_LIMIT_MIB} MiB, now ${(memory.usage / MIB).toFixed(1)} MiB`,
      );
      assert.equal(memory.oomKills, 0, "the driver was OOM-killed inside the cgroup");
      assert.equal(driver.status(), undefined, `the driver exited:\n${driver.lines.slice(-20).join("\n")}`);
      await client.probe();
      assert.deepEqual(await node.mounts(), []);
    } finally {
      await node.close();
      await cgroup.remove();
    }
  },
});
