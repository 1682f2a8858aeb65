import assert from "node:assert/strict";
import { parseEndpoint } from "../../lib/csi/endpoint.ts";
import { prepareSocketPath, removeSocket } from "../../lib/unix-socket.ts";

Deno.test("parseEndpoint: unix:///abs/path is the absolute path", () => {
  assert.equal(parseEndpoint("unix:///csi/csi.sock"), "/csi/csi.sock");
  assert.equal(
    parseEndpoint("unix:///var/lib/kubelet/plugins/csi-secrets-store/csi.sock"),
    "/var/lib/kubelet/plugins/csi-secrets-store/csi.sock",
  );
});

Deno.test("parseEndpoint: unix://path is rooted, as upstream", () => {
  assert.equal(parseEndpoint("unix://csi/csi.sock"), "/csi/csi.sock");
  assert.equal(parseEndpoint("unix://tmp/csi.sock"), "/tmp/csi.sock");
});

Deno.test("parseEndpoint: the scheme is case-insensitive", () => {
  assert.equal(parseEndpoint("UNIX:///csi/csi.sock"), "/csi/csi.sock");
});

Deno.test("parseEndpoint: anything but a unix socket path is a clear error", () => {
  for (
    const endpoint of [
      "",
      "/csi/csi.sock",
      "csi.sock",
      "tcp://127.0.0.1:10000",
      "unix:/csi/csi.sock",
      "unix:csi.sock",
    ]
  ) {
    assert.throws(
      () => parseEndpoint(endpoint),
      (err: Error) =>
        err.message.includes(JSON.stringify(endpoint)) && err.message.includes("unix:///csi/csi.sock"),
      endpoint,
    );
  }
  for (const endpoint of ["unix://", "unix:///", "unix:////"]) {
    assert.throws(() => parseEndpoint(endpoint), /the socket path is empty/, endpoint);
  }
});

Deno.test("prepareSocketPath: creates missing parent directories", async () => {
  const dir = await Deno.makeTempDir({ prefix: "csi-endpoint-" });
  try {
    await prepareSocketPath(`${dir}/a/b/csi.sock`);
    assert.ok((await Deno.stat(`${dir}/a/b`)).isDirectory);
    await assert.rejects(Deno.lstat(`${dir}/a/b/csi.sock`), Deno.errors.NotFound);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("prepareSocketPath: removes a stale socket", async () => {
  const dir = await Deno.makeTempDir({ prefix: "csi-endpoint-" });
  try {
    // A hard link keeps a socket inode on disk after its listener is gone, like a crashed driver's socket.
    const listener = Deno.listen({ transport: "unix", path: `${dir}/live.sock` });
    await Deno.link(`${dir}/live.sock`, `${dir}/csi.sock`);
    listener.close();
    assert.ok((await Deno.lstat(`${dir}/csi.sock`)).isSocket);
    await prepareSocketPath(`${dir}/csi.sock`);
    await assert.rejects(Deno.lstat(`${dir}/csi.sock`), Deno.errors.NotFound);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("prepareSocketPath: refuses a regular file, a directory or a symlink at the path", async () => {
  const dir = await Deno.makeTempDir({ prefix: "csi-endpoint-" });
  try {
    await Deno.writeTextFile(`${dir}/file`, "data");
    await Deno.mkdir(`${dir}/dir`);
    await Deno.symlink(`${dir}/file`, `${dir}/link`);
    for (const name of ["file", "dir", "link"]) {
      await assert.rejects(
        prepareSocketPath(`${dir}/${name}`),
        new RegExp(`cannot listen on ${dir}/${name}: it exists and is not a socket`),
      );
    }
    assert.equal(await Deno.readTextFile(`${dir}/file`), "data");
    assert.ok((await Deno.stat(`${dir}/dir`)).isDirectory);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("removeSocket: removes the file and tolerates its absence", async () => {
  const dir = await Deno.makeTempDir({ prefix: "csi-endpoint-" });
  try {
    await Deno.writeTextFile(`${dir}/csi.sock`, "");
    await removeSocket(`${dir}/csi.sock`);
    await assert.rejects(Deno.lstat(`${dir}/csi.sock`), Deno.errors.NotFound);
    await removeSocket(`${dir}/csi.sock`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
