import assert from "node:assert/strict";
import { DriverError, GrpcStatus } from "../../lib/errors.ts";
import { createLogger } from "../../lib/log.ts";
import { SyscallError } from "../../lib/mount/errno.ts";
import { MNT_DETACH, sysMount, sysUmount2, UMOUNT_NOFOLLOW } from "../../lib/mount/libc.ts";
import { isMountPoint, type MountEntry, mountsUnder, readMountinfo } from "../../lib/mount/mountinfo.ts";
import { noswapSupported, swapIsOn, TmpfsMounter } from "../../lib/mount/tmpfs.ts";
import type { Target } from "../../lib/volume/ports.ts";
import { requireRoot } from "../support/root.ts";

const MiB = 1024 * 1024;

/** Runs `fn` in a fresh temp dir; afterwards detaches whatever is still mounted below it and removes it. */
async function inTempDir(fn: (dir: string) => Promise<void>): Promise<void> {
  requireRoot();
  const dir = await Deno.realPath(await Deno.makeTempDir({ prefix: "tmpfs-test-" }));
  try {
    await fn(dir);
  } finally {
    for (const entry of (await mountsUnder(dir)).reverse()) sysUmount2(entry.mountPoint, MNT_DETACH);
    await Deno.remove(dir, { recursive: true });
  }
}

async function makeDir(path: string): Promise<string> {
  await Deno.mkdir(path);
  return path;
}

async function entryAt(mountPoint: string): Promise<MountEntry | undefined> {
  return (await readMountinfo()).find((entry) => entry.mountPoint === mountPoint);
}

/** Opens `path` with `mounter` (null when missing), runs `fn` on it and closes it. */
async function withTarget<T>(
  mounter: TmpfsMounter,
  path: string,
  fn: (target: Target) => Promise<T>,
): Promise<T | undefined> {
  const target = await mounter.open(path, { create: false });
  if (target === null) return undefined;
  try {
    return await fn(target);
  } finally {
    mounter.close(target);
  }
}

/** Mounts a tmpfs on the existing directory `path` (as the use case does: open, mount, close). */
function mountAt(mounter: TmpfsMounter, path: string): Promise<unknown> {
  return withTarget(mounter, path, (t) => mounter.mount(t)).then((root) => {
    if (root === undefined) throw new Error(`${path} does not exist`);
  });
}

/** Unmounts whatever the driver mounted on `path`, as a later call would (a fresh open). */
function unmountAt(mounter: TmpfsMounter, path: string): Promise<unknown> {
  return withTarget(mounter, path, (t) => mounter.unmount(t));
}

function assertDriverError(err: unknown, code: GrpcStatus, sentence: RegExp): true {
  assert.ok(err instanceof DriverError, `expected a DriverError, got ${err}`);
  assert.equal(err.code, code);
  assert.match(err.message, sentence);
  return true;
}

Deno.test("mount gives a capped nosuid,nodev tmpfs; unmount is idempotent", async () => {
  await inTempDir(async (dir) => {
    const target = await makeDir(`${dir}/vol`);
    const mounter = new TmpfsMounter({ sizeBytes: MiB, noswap: "off" });
    await mountAt(mounter, target);

    const entry = await entryAt(target);
    assert.ok(entry, "the tmpfs is in /proc/self/mountinfo");
    assert.equal(entry.fsType, "tmpfs");
    assert.ok(entry.mountOptions.includes("nosuid") && entry.mountOptions.includes("nodev"));
    assert.ok(entry.mountOptions.includes("noexec"), entry.mountOptions.join(","));
    assert.ok(entry.superOptions.includes("size=1024k"), entry.superOptions.join(","));
    assert.ok(entry.superOptions.includes("mode=755"), entry.superOptions.join(","));
    assert.equal(await isMountPoint(target), true);

    await Deno.writeFile(`${target}/small`, new Uint8Array(MiB / 2));
    await assert.rejects(
      Deno.writeFile(`${target}/big`, new Uint8Array(MiB)),
      (err: Error & { code?: string }) => err.code === "ENOSPC",
    );

    await unmountAt(mounter, target);
    assert.equal(await isMountPoint(target), false);
    assert.equal(await entryAt(target), undefined);
    await unmountAt(mounter, target);
    await unmountAt(mounter, `${dir}/missing`);
    await unmountAt(mounter, `${dir}/missing/deeper`);
  });
});

Deno.test("noswap: 'on' and 'auto' show noswap in the super options on this kernel, 'off' omits it", async () => {
  await inTempDir(async (dir) => {
    for (const [mode, expected] of [["on", true], ["auto", true], ["off", false]] as const) {
      const target = await makeDir(`${dir}/${mode}`);
      const mounter = new TmpfsMounter({ sizeBytes: MiB, noswap: mode });
      await mountAt(mounter, target);
      try {
        const entry = await entryAt(target);
        assert.equal(entry?.superOptions.includes("noswap"), expected, `${mode}: ${entry?.superOptions}`);
      } finally {
        await unmountAt(mounter, target);
      }
    }
    assert.equal(await noswapSupported(), true); // Linux >= 6.4
  });
});

/** A real mount(2) that answers EINVAL for noswap, like a kernel before 6.4; records every data string. */
function kernelWithoutNoswap(calls: string[]): typeof sysMount {
  return (source, target, fstype, flags, data) => {
    calls.push(data);
    if (data.split(",").includes("noswap")) throw new SyscallError("mount", target, 22);
    sysMount(source, target, fstype, flags, data);
  };
}

Deno.test("noswap 'auto' retries without noswap on EINVAL, remembers it and warns once", async () => {
  await inTempDir(async (dir) => {
    const calls: string[] = [];
    const lines: string[] = [];
    const mounter = new TmpfsMounter({
      sizeBytes: MiB,
      noswap: "auto",
      log: createLogger({ json: true, verbosity: 0, sink: (line) => lines.push(line) }),
      mountSyscall: kernelWithoutNoswap(calls),
    });
    for (const name of ["a", "b"]) {
      const target = await makeDir(`${dir}/${name}`);
      await mountAt(mounter, target);
      assert.equal((await entryAt(target))?.superOptions.includes("noswap"), false);
      await unmountAt(mounter, target);
    }
    assert.deepEqual(calls, [
      `size=${MiB},mode=0755,noswap`,
      `size=${MiB},mode=0755`,
      `size=${MiB},mode=0755`,
    ]);
    assert.equal(lines.length, 1);
    // A warning in upstream's JSON schema (mlog): an info line with "warning": true.
    assert.equal(JSON.parse(lines[0]).warning, true);
    assert.match(JSON.parse(lines[0]).message, /noswap/);
  });
});

Deno.test("noswap 'on' fails with a sentence naming the options when the kernel rejects noswap", async () => {
  await inTempDir(async (dir) => {
    const target = await makeDir(`${dir}/vol`);
    const mounter = new TmpfsMounter({ sizeBytes: MiB, noswap: "on", mountSyscall: kernelWithoutNoswap([]) });
    await assert.rejects(
      mountAt(mounter, target),
      (err) => assertDriverError(err, GrpcStatus.INTERNAL, /rejected the options ".*noswap".*EINVAL/),
    );
    assert.equal(await isMountPoint(target), false);
  });
});

Deno.test("mount refuses a path that is already a mount point", async () => {
  await inTempDir(async (dir) => {
    const target = await makeDir(`${dir}/vol`);
    const mounter = new TmpfsMounter({ sizeBytes: MiB });
    await mountAt(mounter, target);
    await assert.rejects(
      mountAt(mounter, target),
      (err) => assertDriverError(err, GrpcStatus.FAILED_PRECONDITION, /already a mount point/),
    );
    assert.equal((await readMountinfo()).filter((entry) => entry.mountPoint === target).length, 1);
    await unmountAt(mounter, target);
  });
});

Deno.test("mount on a directory that vanished after it was opened says the target does not exist", async () => {
  await inTempDir(async (dir) => {
    const target = `${dir}/missing`;
    const mounter = new TmpfsMounter({ sizeBytes: MiB });
    assert.equal(await mounter.open(target, { create: false }), null);
    const opened = (await mounter.open(target, { create: true }))!;
    await Deno.remove(target);
    const err = await mounter.mount(opened).catch((e) => e);
    mounter.close(opened);
    assertDriverError(
      err,
      GrpcStatus.INTERNAL,
      /the target directory does not exist \(openat\(2\) answered ENOENT\)/,
    );
    assert.ok(err.message.includes(JSON.stringify(target)));
    assert.equal(err.cause.code, "ENOENT");
  });
});

Deno.test("bad targets are INVALID_ARGUMENT errors, and a bad size is refused up front", async () => {
  const mounter = new TmpfsMounter({ sizeBytes: MiB });
  await assert.rejects(
    mountAt(mounter, ""),
    (err) => assertDriverError(err, GrpcStatus.INVALID_ARGUMENT, /empty/),
  );
  await assert.rejects(
    unmountAt(mounter, "/tmp/a\0b"),
    (err) => assertDriverError(err, GrpcStatus.INVALID_ARGUMENT, /NUL byte/),
  );
  assert.throws(
    () => sysMount("tmpfs", "/tmp/x", "tmpfs", 0n, "size=1\0"),
    (err) => assertDriverError(err, GrpcStatus.INVALID_ARGUMENT, /mount options .* NUL byte/),
  );
  for (const sizeBytes of [0, -1, 1.5, NaN]) {
    assert.throws(() => new TmpfsMounter({ sizeBytes }), RangeError);
  }
});

Deno.test("without CAP_SYS_ADMIN over the mount namespace, mount says to run as root (real EPERM)", async () => {
  await inTempDir(async (dir) => {
    const target = await makeDir(`${dir}/vol`);
    const tmpfsModule = new URL("../../lib/mount/tmpfs.ts", import.meta.url).href;
    const script = `
      import { TmpfsMounter } from ${JSON.stringify(tmpfsModule)};
      try {
        const mounter = new TmpfsMounter({ sizeBytes: 4096 });
        await mounter.mount(await mounter.open(${JSON.stringify(target)}, { create: false }));
        console.log(JSON.stringify({ mounted: true }));
      } catch (err) {
        console.log(JSON.stringify({ code: err.code, message: err.message, errno: err.cause?.code }));
      }`;
    // A new user namespace maps us to root inside it, but the host mount namespace stays out of reach.
    const { code, stdout, stderr } = await new Deno.Command("unshare", {
      args: ["--user", "--map-root-user", Deno.execPath(), "eval", "--config", configPath(), script],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const decoder = new TextDecoder();
    assert.equal(code, 0, decoder.decode(stderr));
    const result = JSON.parse(decoder.decode(stdout));
    assert.equal(result.errno, "EPERM");
    assert.equal(result.code, GrpcStatus.INTERNAL);
    assert.match(result.message, /mounting tmpfs needs CAP_SYS_ADMIN: run as root \(or privileged\)/);
    assert.equal(await isMountPoint(target), false);
  });
});

function configPath(): string {
  return new URL("../../deno.json", import.meta.url).pathname;
}

Deno.test("paths with space, tab, newline and backslash are found in the real mountinfo", async () => {
  await inTempDir(async (dir) => {
    const target = await makeDir(`${dir}/odd name\twith\nescapes\\here`);
    const mounter = new TmpfsMounter({ sizeBytes: MiB });
    await mountAt(mounter, target);
    assert.equal(await isMountPoint(target), true);
    assert.deepEqual((await mountsUnder(dir)).map((entry) => entry.mountPoint), [target]);
    assert.equal((await entryAt(target))?.fsType, "tmpfs");
    await unmountAt(mounter, target);
    assert.equal(await isMountPoint(target), false);
  });
});

Deno.test("a symbolic link to a mount point is never followed: not by umount2, unmount or mount", async () => {
  await inTempDir(async (dir) => {
    const target = await makeDir(`${dir}/vol`);
    const link = `${dir}/link`;
    await Deno.symlink(target, link);
    const mounter = new TmpfsMounter({ sizeBytes: MiB });
    await mountAt(mounter, target);

    assert.throws(
      () => sysUmount2(link, UMOUNT_NOFOLLOW),
      (err) => err instanceof SyscallError && err.code === "EINVAL",
    );
    assert.equal(await isMountPoint(link), false);
    // The link is refused as a target, and the mount it points at stays.
    await assert.rejects(
      unmountAt(mounter, link),
      (err) =>
        assertDriverError(err, GrpcStatus.INVALID_ARGUMENT, /is a symlink; the driver does not follow it/),
    );
    assert.equal(await isMountPoint(target), true);

    const plain = await makeDir(`${dir}/plain`);
    const linkToPlain = `${dir}/link-to-plain`;
    await Deno.symlink(plain, linkToPlain);
    await assert.rejects(
      mountAt(mounter, linkToPlain),
      (err) =>
        assertDriverError(err, GrpcStatus.INVALID_ARGUMENT, /is a symlink; the driver does not follow it/),
    );
    assert.equal(await isMountPoint(plain), false);

    await unmountAt(mounter, target);
    assert.equal(await isMountPoint(target), false);
  });
});

Deno.test("swapIsOn agrees with /proc/swaps", async () => {
  const lines = (await Deno.readTextFile("/proc/swaps")).trim().split("\n");
  assert.equal(await swapIsOn(), lines.length > 1);
});

Deno.test("unmount waits out a file held open for a moment, and says the mount is busy when it stays open", async () => {
  requireRoot();
  await inTempDir(async (dir) => {
    const target = await makeDir(`${dir}/vol`);
    const mounter = new TmpfsMounter({ sizeBytes: MiB });
    await mountAt(mounter, target);
    try {
      const held = await Deno.open(`${target}/f`, { write: true, create: true });
      await assert.rejects(
        unmountAt(mounter, target),
        (err) => assertDriverError(err, GrpcStatus.FAILED_PRECONDITION, /busy/),
      );
      setTimeout(() => held.close(), 30);
      await unmountAt(mounter, target);
      assert.equal(await isMountPoint(target), false);
    } finally {
      if (await isMountPoint(target)) sysUmount2(target, MNT_DETACH);
    }
  });
});

for (const mountApi of ["auto", "legacy"] as const) {
  const api = mountApi === "auto" ? "fsopen/fsmount/move_mount" : "mount(2) on /proc/self/fd (kernels < 5.2)";
  Deno.test(`${api}: the tmpfs lands below the parent that was opened, never where a swapped-in link points`, async () => {
    await inTempDir(async (dir) => {
      const target = `${dir}/parent/vol`;
      await Deno.mkdir(target, { recursive: true });
      await Deno.mkdir(`${dir}/decoy/vol`, { recursive: true });
      const mounter = new TmpfsMounter({ sizeBytes: MiB, mountApi });
      const opened = (await mounter.open(target, { create: false }))!;
      try {
        // Between the checks and the mount: the parent is moved away and a link takes its name.
        await Deno.rename(`${dir}/parent`, `${dir}/moved`);
        await Deno.symlink(`${dir}/decoy`, `${dir}/parent`);
        const root = await mounter.mount(opened);
        const entry = await entryAt(`${dir}/moved/vol`);
        assert.equal(entry?.fsType, "tmpfs", "the tmpfs is not on the opened directory");
        assert.ok(["nosuid", "nodev", "noexec"].every((o) => entry.mountOptions.includes(o)));
        assert.ok(entry.superOptions.includes("size=1024k"), entry.superOptions.join(","));
        assert.equal(
          await entryAt(`${dir}/decoy/vol`),
          undefined,
          "the tmpfs was mounted where the link points",
        );
        await Deno.writeTextFile(`${root}/token`, "s");
        assert.equal(await Deno.readTextFile(`${dir}/moved/vol/token`), "s", "the root is not that tmpfs");
        assert.deepEqual([...Deno.readDirSync(`${dir}/decoy/vol`)], []);
        await assert.rejects(
          mounter.verify(opened, root),
          (err) => assertDriverError(err, GrpcStatus.INTERNAL, /no longer leads to the tmpfs/),
        );
        await mounter.unmount(opened); // detached by descriptor, wherever it is now
        assert.equal(await entryAt(`${dir}/moved/vol`), undefined);
      } finally {
        mounter.close(opened);
      }
    });
  });

  Deno.test(`${api}: a target swapped for a link after it was opened is refused, not mounted through`, async () => {
    await inTempDir(async (dir) => {
      const target = await makeDir(`${dir}/vol`);
      const decoy = await makeDir(`${dir}/decoy`);
      const mounter = new TmpfsMounter({ sizeBytes: MiB, mountApi });
      const opened = (await mounter.open(target, { create: false }))!;
      try {
        await Deno.rename(target, `${dir}/moved`);
        await Deno.symlink(decoy, target);
        await assert.rejects(
          mounter.mount(opened),
          (err) =>
            assertDriverError(
              err,
              GrpcStatus.INVALID_ARGUMENT,
              /is a symlink; the driver does not follow it/,
            ),
        );
        assert.deepEqual(await mountsUnder(dir), []);
      } finally {
        mounter.close(opened);
      }
    });
  });
}

Deno.test("a mount that is not a tmpfs is refused by mount, mounted and unmount, naming it", async () => {
  await inTempDir(async (dir) => {
    const target = await makeDir(`${dir}/vol`);
    sysMount("someone-else", target, "ramfs", 0n, "");
    const mounter = new TmpfsMounter({ sizeBytes: MiB });
    const foreign =
      /has a ramfs file system \(source "someone-else"\) mounted on it, which this driver did not mount/;
    await assert.rejects(
      withTarget(mounter, target, (t) => mounter.mounted(t)),
      (err) => assertDriverError(err, GrpcStatus.FAILED_PRECONDITION, foreign),
    );
    await assert.rejects(
      unmountAt(mounter, target),
      (err) => assertDriverError(err, GrpcStatus.FAILED_PRECONDITION, foreign),
    );
    await assert.rejects(
      mountAt(mounter, target),
      (err) => assertDriverError(err, GrpcStatus.FAILED_PRECONDITION, /already a mount point/),
    );
    assert.equal((await entryAt(target))?.fsType, "ramfs");
  });
});

Deno.test("kubelet's shape only: a target outside <root>/pods/<uid>/volumes/kubernetes.io~csi/<name>/mount is refused", async () => {
  await inTempDir(async (dir) => {
    const mounter = new TmpfsMounter({ sizeBytes: MiB, kubeletRootDir: dir });
    for (
      const path of [
        `${dir}/x`,
        `${dir}/pods/u/volumes/kubernetes.io~secret/v/mount`,
        `${dir}/pods/u/volumes/kubernetes.io~csi/v/mount/deeper`,
        `${dir}/pods/u/volumes/kubernetes.io~csi/v`,
        "/etc/x",
      ]
    ) {
      await assert.rejects(
        mounter.open(path, { create: true }),
        (err) => assertDriverError(err, GrpcStatus.INVALID_ARGUMENT, /is not a kubelet CSI volume path/),
      );
    }
    assert.deepEqual([...Deno.readDirSync(dir)], [], "a refused path created something");
    const ok = `${dir}/pods/u/volumes/kubernetes.io~csi/v/mount`;
    const target = (await mounter.open(ok, { create: true }))!;
    mounter.close(target);
    assert.ok((await Deno.lstat(ok)).isDirectory);
    assert.equal((await Deno.stat(ok)).mode! & 0o777, 0o750);
  });
});
