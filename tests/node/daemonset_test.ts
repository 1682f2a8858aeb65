/** tests/node/daemonset.ts: the DaemonSet's command lines as the real-node harness runs them on the host. */
import assert from "node:assert/strict";
import { hostCommand, withFlags } from "./daemonset.ts";

const HOST = "/tmp/n/host";

Deno.test("daemonset: the driver's args map container paths through their hostPath volumes", async () => {
  const driver = await hostCommand("secrets-store", "node-1", HOST);
  // Upstream's shape: flags only, no subcommand (a command line that starts with a flag runs `node`).
  assert.ok(driver.args[0].startsWith("--"), driver.args[0]);
  assert.ok(
    driver.args.includes(`--endpoint=unix://${HOST}/var/lib/kubelet/plugins/csi-secrets-store/csi.sock`),
  );
  assert.ok(driver.args.includes("--nodeid=node-1"));
  assert.ok(driver.args.includes(`--provider-volume=${HOST}/var/run/secrets-store-csi-providers`));
  assert.ok(
    driver.args.includes(
      `--additional-provider-volume-paths=${HOST}/etc/kubernetes/secrets-store-csi-providers`,
    ),
  );
  assert.ok(driver.hostDirs.includes(`${HOST}/var/lib/kubelet/pods`));
});

Deno.test("daemonset: the registrar tells kubelet the socket the driver listens on", async () => {
  const driver = await hostCommand("secrets-store", "node-1", HOST);
  const registrar = await hostCommand("node-driver-registrar", "node-1", HOST);
  const endpoint = driver.args.find((a) => a.startsWith("--endpoint="))!.replace("--endpoint=unix://", "");
  assert.ok(registrar.args.includes(`--csi-address=${endpoint}`));
  assert.ok(registrar.args.includes(`--kubelet-registration-path=${endpoint}`));
  assert.equal(registrar.hostPath("/registration"), `${HOST}/var/lib/kubelet/plugins_registry/`);
});

Deno.test("daemonset: withFlags replaces flags by name and appends new ones", () => {
  assert.deepEqual(
    withFlags(["node", "--a=1", "--b=2"], { b: "3", c: "4" }),
    ["node", "--a=1", "--b=3", "--c=4"],
  );
});
