import assert from "node:assert/strict";
import { join } from "node:path";
import { DriverError, GrpcStatus, PayloadError } from "../../lib/errors.ts";
import { AtomicWriter, DATA_DIR } from "../../lib/files/atomic-writer.ts";
import type { ProviderFile } from "../../lib/volume/ports.ts";
import { requireRoot } from "../support/root.ts";

const TIMESTAMPED = /^\.\.\d{4}_\d{2}_\d{2}_\d{2}_\d{2}_\d{2}\.[^/]+$/;
const bytes = (s: string) => new TextEncoder().encode(s);
const file = (path: string, contents: string | Uint8Array, mode = 0o644): ProviderFile => ({
  path,
  mode,
  contents: typeof contents === "string" ? bytes(contents) : contents,
});
const newWriter = (maxTotalBytes = 1024 * 1024) =>
  new AtomicWriter({ limits: { maxTotalBytes, maxFiles: 100 } });

async function withTempDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "atomic-writer-test-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** Names in `dir`, sorted. */
async function entries(dir: string): Promise<string[]> {
  const names: string[] = [];
  for await (const entry of Deno.readDir(dir)) names.push(entry.name);
  return names.sort();
}

async function timestampedDirs(dir: string): Promise<string[]> {
  return (await entries(dir)).filter((name) => TIMESTAMPED.test(name));
}

const sortedByPath = (files: ProviderFile[]) => [...files].sort((a, b) => a.path < b.path ? -1 : 1);
const readText = async (path: string) => new TextDecoder().decode(await Deno.readFile(path));
const modeOf = async (path: string) => (await Deno.stat(path)).mode! & 0o777;

const PAYLOAD = [
  file("token", "t0k3n", 0o600),
  file("certs/tls.crt", "CERT", 0o644),
  file("certs/ca/root.pem", "ROOT", 0o444),
  file("wide-open", "w", 0o777),
];

Deno.test("writes files with exact modes behind ..data symlinks, nested directories included", async () => {
  await withTempDir(async (target) => {
    const writer = newWriter();
    assert.equal(await writer.read(target), null);
    assert.deepEqual(await writer.write(target, PAYLOAD), { changed: true });

    const [live] = await timestampedDirs(target);
    assert.ok(live, "no timestamped directory");
    assert.equal(await Deno.readLink(join(target, DATA_DIR)), live);
    assert.deepEqual(await entries(target), [DATA_DIR, live, "certs", "token", "wide-open"].sort());
    assert.equal(await Deno.readLink(join(target, "token")), "..data/token");
    assert.equal(await Deno.readLink(join(target, "certs")), "..data/certs");
    assert.equal(await Deno.readLink(join(target, "wide-open")), "..data/wide-open");

    assert.equal(await readText(join(target, "token")), "t0k3n");
    assert.equal(await readText(join(target, "certs/ca/root.pem")), "ROOT");
    assert.equal(await modeOf(join(target, "token")), 0o600);
    assert.equal(await modeOf(join(target, "certs/tls.crt")), 0o644);
    assert.equal(await modeOf(join(target, "certs/ca/root.pem")), 0o444);
    assert.equal(await modeOf(join(target, "wide-open")), 0o777, "umask leaked into the file mode");
    assert.equal(await modeOf(join(target, live)), 0o755);
    assert.equal(await modeOf(join(target, live, "certs/ca")), 0o755);

    const read = await writer.read(target);
    assert.deepEqual(read, sortedByPath(PAYLOAD));
  });
});

Deno.test("a rewrite without a file removes its symlink and the old timestamped directory", async () => {
  await withTempDir(async (target) => {
    const writer = newWriter();
    await writer.write(target, PAYLOAD);
    const [first] = await timestampedDirs(target);
    const next = PAYLOAD.filter((f) => f.path !== "token").map((f) =>
      f.path === "wide-open" ? file("wide-open", "changed", 0o600) : f
    );
    assert.deepEqual(await writer.write(target, next), { changed: true });

    const dirs = await timestampedDirs(target);
    assert.equal(dirs.length, 1);
    assert.notEqual(dirs[0], first);
    assert.equal(await Deno.readLink(join(target, DATA_DIR)), dirs[0]);
    assert.deepEqual(await entries(target), [DATA_DIR, dirs[0], "certs", "wide-open"].sort());
    assert.equal(await readText(join(target, "wide-open")), "changed");
    assert.equal(await modeOf(join(target, "wide-open")), 0o600);
  });
});

Deno.test("an identical rewrite changes nothing; a mode-only change is a change", async () => {
  await withTempDir(async (target) => {
    const writer = newWriter();
    await writer.write(target, PAYLOAD);
    const [live] = await timestampedDirs(target);
    const before = await Deno.lstat(join(target, live));
    const dataBefore = await Deno.lstat(join(target, DATA_DIR));

    // Same files in another order and in fresh buffers.
    const again = [...PAYLOAD].reverse().map((f) => ({ ...f, contents: f.contents.slice() }));
    assert.deepEqual(await writer.write(target, again), { changed: false });
    assert.equal(await Deno.readLink(join(target, DATA_DIR)), live);
    assert.deepEqual(await timestampedDirs(target), [live]);
    assert.equal((await Deno.lstat(join(target, live))).mtime?.getTime(), before.mtime?.getTime());
    assert.equal((await Deno.lstat(join(target, DATA_DIR))).ino, dataBefore.ino, "..data was swapped");

    const modeChanged = PAYLOAD.map((f) => f.path === "token" ? { ...f, mode: 0o640 } : f);
    assert.deepEqual(await writer.write(target, modeChanged), { changed: true });
    assert.equal(await modeOf(join(target, "token")), 0o640);
  });
});

/**
 * `root/target` with links planted where the payload's names go, all leading to `root/outside` (which
 * holds `passwd`): token -> a file outside, certs -> the directory outside, ..data -> the directory outside.
 */
async function plantLinksOutside(root: string): Promise<{ target: string; outside: string }> {
  const target = join(root, "target");
  const outside = join(root, "outside");
  await Deno.mkdir(target);
  await Deno.mkdir(outside);
  await Deno.writeTextFile(join(outside, "passwd"), "precious");
  await Deno.symlink(join(outside, "passwd"), join(target, "token"));
  await Deno.symlink(outside, join(target, "certs"));
  await Deno.symlink(outside, join(target, DATA_DIR));
  return { target, outside };
}

Deno.test("planted entries in the target are replaced without being followed", async () => {
  await withTempDir(async (root) => {
    const { target, outside } = await plantLinksOutside(root);
    // A regular file and a directory where payload names go.
    await Deno.writeTextFile(join(target, "wide-open"), "old");
    await Deno.mkdir(join(target, "nested-dir"));
    await Deno.symlink(join(outside, "passwd"), join(target, "nested-dir", "link"));

    const payload = [...PAYLOAD, file("nested-dir/x", "x")];
    assert.deepEqual(await newWriter().write(target, payload), { changed: true });

    assert.deepEqual(await entries(outside), ["passwd"]);
    assert.equal(await readText(join(outside, "passwd")), "precious");
    for (const name of ["token", "certs", "wide-open", "nested-dir"]) {
      assert.equal(await Deno.readLink(join(target, name)), `..data/${name}`);
    }
    assert.match(await Deno.readLink(join(target, DATA_DIR)), TIMESTAMPED);
    assert.equal(await readText(join(target, "token")), "t0k3n");
    assert.equal(await readText(join(target, "certs/tls.crt")), "CERT");
  });
});

Deno.test("a ..data that is a real directory is replaced by the writer's symlink", async () => {
  await withTempDir(async (target) => {
    await Deno.mkdir(join(target, DATA_DIR));
    await Deno.writeTextFile(join(target, DATA_DIR, "token"), "planted");
    const writer = newWriter();
    assert.equal(await writer.read(target), null);
    assert.deepEqual(await writer.write(target, PAYLOAD), { changed: true });
    assert.match(await Deno.readLink(join(target, DATA_DIR)), TIMESTAMPED);
    assert.equal(await readText(join(target, "token")), "t0k3n");
  });
});

Deno.test("a target that is a symlink is refused and nothing is written through it", async () => {
  await withTempDir(async (root) => {
    const real = join(root, "real");
    await Deno.mkdir(real);
    await Deno.symlink(real, join(root, "link"));
    const writer = newWriter();
    await assert.rejects(writer.write(join(root, "link"), PAYLOAD), (err: unknown) => {
      assert.ok(err instanceof DriverError);
      assert.equal(err.code, GrpcStatus.INTERNAL);
      assert.match(err.message, /is a symlink/);
      return true;
    });
    await assert.rejects(writer.read(join(root, "link")), /is a symlink/);
    assert.deepEqual(await entries(real), []);
    await assert.rejects(writer.write(join(root, "missing"), PAYLOAD), /does not exist/);
  });
});

Deno.test("an invalid payload is rejected before anything is written", async () => {
  await withTempDir(async (target) => {
    const writer = newWriter(64);
    await writer.write(target, [file("a", "small")]);
    const before = await entries(target);
    await assert.rejects(writer.write(target, [file("a", "x".repeat(65))]), PayloadError);
    await assert.rejects(writer.write(target, [file("b", "b"), file("../escape", "e")]), PayloadError);
    assert.deepEqual(await entries(target), before);
    assert.equal(await readText(join(target, "a")), "small");
  });
});

Deno.test("leftovers of an interrupted write are cleaned up by the next write", async () => {
  await withTempDir(async (target) => {
    const writer = newWriter();
    await writer.write(target, PAYLOAD);
    const [live] = await timestampedDirs(target);
    const stray = join(target, "..2000_01_01_00_00_00.crashed");
    await Deno.mkdir(stray);
    await Deno.writeTextFile(join(stray, "token"), "old secret");
    await Deno.symlink(live, join(target, "..data_tmp"));
    await Deno.symlink("..data/gone", join(target, "gone"));
    await Deno.writeTextFile(join(target, "..unrelated"), "not ours");

    assert.deepEqual(await writer.write(target, PAYLOAD), { changed: true });
    const [now] = await timestampedDirs(target);
    assert.deepEqual(
      await entries(target),
      [DATA_DIR, now, "..unrelated", "certs", "token", "wide-open"].sort(),
    );
    assert.deepEqual(await writer.write(target, PAYLOAD), { changed: false });
  });
});

Deno.test("concurrent writes to one target run one after the other", async () => {
  await withTempDir(async (target) => {
    const writer = newWriter();
    const payloads = Array.from({ length: 5 }, (_, i) => [file(`f${i}`, `v${i}`), file("common/x", `x${i}`)]);
    const results = await Promise.all(payloads.map((p) => writer.write(target, p)));
    assert.ok(results.every((r) => r.changed));
    assert.equal((await timestampedDirs(target)).length, 1);
    assert.deepEqual(await writer.read(target), sortedByPath(payloads[4]));
    assert.deepEqual((await entries(target)).filter((n) => !n.startsWith("..")), ["common", "f4"]);
  });
});

Deno.test("running out of space on a real tmpfs mid-write leaves the old payload intact", async () => {
  requireRoot();
  await withTempDir(async (target) => {
    const mount = await new Deno.Command("mount", {
      args: ["-t", "tmpfs", "-o", "size=64k", "tmpfs", target],
    })
      .output();
    assert.ok(mount.success, new TextDecoder().decode(mount.stderr));
    try {
      const writer = newWriter();
      const old = [file("token", "old token", 0o600)];
      await writer.write(target, old);
      const before = await entries(target);

      const tooBig = [
        file("token", "new token"),
        file("big1", new Uint8Array(40_000)),
        file("big2", new Uint8Array(40_000)),
      ];
      await assert.rejects(writer.write(target, tooBig), (err: unknown) => {
        assert.ok(err instanceof DriverError && !(err instanceof PayloadError));
        assert.equal(err.code, GrpcStatus.INTERNAL);
        assert.match(err.message, /could not write 3 files into/);
        return true;
      });

      assert.deepEqual(await entries(target), before, "a stray directory or link was left behind");
      assert.deepEqual(await writer.read(target), old);
      assert.equal(await readText(join(target, "token")), "old token");
    } finally {
      const umount = await new Deno.Command("umount", { args: [target] }).output();
      assert.ok(umount.success, new TextDecoder().decode(umount.stderr));
    }
  });
});

const GROUP = 2000;

/** Every entry below `dir` (the directory itself included) with its lstat, by path relative to `dir`. */
async function tree(dir: string, relative = ""): Promise<Map<string, Deno.FileInfo>> {
  const out = new Map<string, Deno.FileInfo>([[relative || ".", await Deno.lstat(join(dir, relative))]]);
  for await (const entry of Deno.readDir(join(dir, relative))) {
    const path = relative ? `${relative}/${entry.name}` : entry.name;
    if (entry.isDirectory) { for (const [p, info] of await tree(dir, path)) out.set(p, info); }
    else out.set(path, await Deno.lstat(join(dir, path)));
  }
  return out;
}

Deno.test("fsGroup: every entry gets the group, the root 0750, the provider's file modes are kept", async () => {
  requireRoot();
  await withTempDir(async (target) => {
    const payload = [...PAYLOAD, file("shared", "s", 0o640)];
    assert.deepEqual(await newWriter().write(target, payload, { group: GROUP }), { changed: true });
    const entries = await tree(target);
    for (const [path, info] of entries) {
      assert.equal(info.gid, GROUP, `${path} has gid ${info.gid}`);
      assert.equal(info.uid, 0, `${path} changed owner`);
    }
    assert.equal((await Deno.stat(target)).mode! & 0o7777, 0o750);
    // Modes exactly as the provider sent them: never widened (nor narrowed) by the driver.
    for (const f of payload) assert.equal(await modeOf(join(target, f.path)), f.mode, f.path);
    const [live] = await timestampedDirs(target);
    assert.equal((await Deno.stat(join(target, live, "certs"))).mode! & 0o777, 0o755);
  });
});

Deno.test("fsGroup: without a group everything stays root's and the root keeps its mode", async () => {
  requireRoot();
  await withTempDir(async (target) => {
    await Deno.chmod(target, 0o755);
    await newWriter().write(target, PAYLOAD);
    for (const [path, info] of await tree(target)) assert.equal(info.gid, 0, path);
    assert.equal((await Deno.stat(target)).mode! & 0o7777, 0o755);
  });
});

Deno.test("fsGroup: a rotation keeps the group; an identical payload with the group writes nothing", async () => {
  requireRoot();
  await withTempDir(async (target) => {
    const writer = newWriter();
    await writer.write(target, PAYLOAD, { group: GROUP });
    assert.deepEqual(await writer.write(target, PAYLOAD, { group: GROUP }), { changed: false });

    const rotated = [...PAYLOAD.filter((f) => f.path !== "token"), file("token", "n3w", 0o640)];
    assert.deepEqual(await writer.write(target, rotated, { group: GROUP }), { changed: true });
    assert.equal(await readText(join(target, "token")), "n3w");
    for (const [path, info] of await tree(target)) assert.equal(info.gid, GROUP, path);
    assert.equal((await Deno.stat(target)).mode! & 0o7777, 0o750);

    // Same files, another group: rewritten with the new one.
    assert.deepEqual(await writer.write(target, rotated, { group: GROUP + 1 }), { changed: true });
    for (const [path, info] of await tree(target)) assert.equal(info.gid, GROUP + 1, path);
  });
});

Deno.test("fsGroup: nothing outside the target changes group, planted links are never followed", async () => {
  requireRoot();
  await withTempDir(async (root) => {
    const { target, outside } = await plantLinksOutside(root);
    await Deno.symlink(outside, join(target, "..data_tmp"));
    const before = await tree(outside);

    await newWriter().write(target, PAYLOAD, { group: GROUP });

    const after = await tree(outside);
    assert.deepEqual([...after.keys()], [...before.keys()]);
    for (const [path, info] of after) {
      assert.equal(info.gid, before.get(path)!.gid, `${path} outside the target changed group`);
      assert.equal(info.mode, before.get(path)!.mode, `${path} outside the target changed mode`);
    }
    assert.equal((await Deno.stat(root)).gid, 0);
    for (const [path, info] of await tree(target)) assert.equal(info.gid, GROUP, path);
    assert.equal(await readText(join(target, "token")), "t0k3n");
  });
});
