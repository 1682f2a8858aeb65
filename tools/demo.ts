/**
 * `deno task demo`: the main job end to end on one machine, non-interactive. Starts the embedded `local`
 * provider and the node plugin as real processes in a temp dir, publishes a volume for
 * examples/spc/demo-local.yaml through a real CSI gRPC client, shows the mounted tree and the mount line,
 * unpublishes, shows that nothing is left, and exits 0. Needs root (it mounts tmpfs).
 */
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { connectCsi, kubeletPublishRequest } from "../lib/csi/client.ts";
import { readMountinfo } from "../lib/mount/mountinfo.ts";
import { waitUntilListening } from "../lib/unix-socket.ts";

const repo = join(dirname(fileURLToPath(import.meta.url)), "..");
const main = join(repo, "main.ts");

function step(text: string): void {
  console.log(`\n== ${text}`);
}

function start(args: string[]): Deno.ChildProcess {
  return new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", main, ...args],
    stdout: "inherit",
    stderr: "inherit",
  }).spawn();
}

async function waitForSocket(path: string, child: Deno.ChildProcess): Promise<void> {
  let exited: number | undefined;
  child.status.then((s) => exited = s.code);
  if (await waitUntilListening(path, 10_000, () => exited !== undefined)) return;
  throw new Error(
    exited === undefined ? `nothing listens on ${path} after 10s` : `process exited with code ${exited}`,
  );
}

/** Lists the target like `ls -la`, following nothing, without printing secret contents. */
async function showTree(dir: string, prefix = ""): Promise<void> {
  const entries = [];
  for await (const entry of Deno.readDir(dir)) entries.push(entry);
  entries.sort((a, b) => a.name.localeCompare(b.name));
  for (const entry of entries) {
    const path = join(dir, entry.name);
    const info = await Deno.lstat(path);
    const mode = (info.mode! & 0o777).toString(8).padStart(4, "0");
    if (info.isSymlink) {
      console.log(`${prefix}${entry.name} -> ${await Deno.readLink(path)}`);
    } else if (info.isDirectory) {
      console.log(`${prefix}${entry.name}/ (mode ${mode})`);
      await showTree(path, prefix + "  ");
    } else {
      console.log(`${prefix}${entry.name} (mode ${mode}, ${info.size} bytes)`);
    }
  }
}

async function demo(): Promise<void> {
  if (Deno.uid() !== 0) throw new Error("the demo mounts tmpfs and needs root: run it as root");
  const dir = await Deno.makeTempDir({ prefix: "secrets-store-csi-demo-" });
  const providers = join(dir, "providers");
  const endpoint = `unix://${join(dir, "csi.sock")}`;
  const target = join(dir, "pods/0f1e2d3c/volumes/kubernetes.io~csi/secrets-store-inline/mount");
  const children: Deno.ChildProcess[] = [];
  try {
    step("starting the embedded local provider and the node plugin");
    children.push(
      start([
        "provider",
        "local",
        "--provider-volume",
        providers,
        "--root",
        join(repo, "examples/local-secrets"),
      ]),
    );
    await waitForSocket(join(providers, "local.sock"), children[0]);
    children.push(start([
      "node",
      "--endpoint",
      endpoint,
      "--nodeid",
      "demo-node",
      "--provider-volume",
      providers,
      "--additional-provider-volume-paths=",
      "--spc-dir",
      join(repo, "examples/spc"),
      "--metrics-addr=127.0.0.1:0",
      // The demo's kubelet-shaped target lives below its temp dir.
      `--kubelet-root-dir=${dir}`,
    ]));
    await waitForSocket(join(dir, "csi.sock"), children[1]);

    const csi = connectCsi(endpoint);
    try {
      const info = await csi.getPluginInfo();
      console.log(`plugin ${info.name} ${info.vendor_version}, node ${(await csi.nodeGetInfo()).node_id}`);

      step(`NodePublishVolume ${target}`);
      await csi.nodePublishVolume(
        kubeletPublishRequest({ pod: "demo-pod", podUid: "0f1e2d3c", targetPath: target, spc: "demo-local" }),
      );
      step("mounted tree (contents not printed)");
      await showTree(target);
      step("mount line");
      const mount = (await readMountinfo()).find((m) => m.mountPoint === target);
      if (!mount) throw new Error("the target is not a mount point after NodePublishVolume");
      console.log(
        `${mount.source} on ${mount.mountPoint} type ${mount.fsType} (${
          [...new Set([...mount.mountOptions, ...mount.superOptions])].join(",")
        })`,
      );

      step("NodeUnpublishVolume");
      await csi.nodeUnpublishVolume({ volume_id: "csi-demo-pod", target_path: target });
    } finally {
      csi.close();
    }
    const left = (await readMountinfo()).filter((m) => m.mountPoint.startsWith(dir));
    const exists = await Deno.lstat(target).then(() => true, () => false);
    console.log(`mounts left under ${dir}: ${left.length}; target directory exists: ${exists}`);
    if (left.length > 0 || exists) throw new Error("unpublish left something behind");
  } finally {
    for (const child of children.reverse()) {
      child.kill("SIGTERM");
      await child.status;
    }
    await Deno.remove(dir, { recursive: true });
  }
  step("done: nothing left behind");
}

if (import.meta.main) {
  try {
    await demo();
  } catch (err) {
    console.error(`demo failed: ${err instanceof Error ? err.message : err}`);
    Deno.exit(1);
  }
}
