import assert from "node:assert/strict";
import { decodeMountinfoPath, parseMountinfo, readMountinfo } from "../../lib/mount/mountinfo.ts";

const FIXTURE = [
  "22 1 0:21 / /proc rw,nosuid,nodev,noexec,relatime shared:12 - proc proc rw",
  "36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 shared:7 - ext3 /dev/root rw,errors=continue",
  String
    .raw`41 27 0:39 / /tmp/a\040b\011c\012d\134e rw,nosuid,nodev,relatime - tmpfs tmpfs rw,size=1024k,mode=755,noswap`,
  String.raw`42 27 0:40 /sub\040dir /srv/x rw - tmpfs my\040source rw`,
  "43 27 0:4 net:[4026531840] /run/netns/a rw - nsfs nsfs rw",
  "44 27 0:41 / /empty-source rw - tmpfs  rw",
  "",
].join("\n");

Deno.test("parseMountinfo reads every field of a line", () => {
  const [proc, ext3] = parseMountinfo(FIXTURE);
  assert.deepEqual(proc, {
    mountId: 22,
    parentId: 1,
    device: "0:21",
    root: "/",
    mountPoint: "/proc",
    mountOptions: ["rw", "nosuid", "nodev", "noexec", "relatime"],
    optionalFields: ["shared:12"],
    fsType: "proc",
    source: "proc",
    superOptions: ["rw"],
  });
  assert.equal(ext3.root, "/mnt1");
  assert.equal(ext3.mountPoint, "/mnt2");
  assert.deepEqual(ext3.optionalFields, ["master:1", "shared:7"]);
  assert.deepEqual(ext3.superOptions, ["rw", "errors=continue"]);
});

Deno.test("parseMountinfo decodes space, tab, newline and backslash escapes in root, mount point and source", () => {
  const entries = parseMountinfo(FIXTURE);
  assert.equal(entries[2].mountPoint, "/tmp/a b\tc\nd\\e");
  assert.deepEqual(entries[2].superOptions, ["rw", "size=1024k", "mode=755", "noswap"]);
  assert.equal(entries[3].root, "/sub dir");
  assert.equal(entries[3].source, "my source");
});

Deno.test("parseMountinfo keeps a root that is not a path and an empty source", () => {
  const entries = parseMountinfo(FIXTURE);
  assert.equal(entries[4].root, "net:[4026531840]");
  assert.equal(entries[5].mountPoint, "/empty-source");
  assert.equal(entries[5].source, "");
  assert.equal(entries.length, 6);
});

Deno.test("decodeMountinfoPath keeps incomplete escapes and decodes UTF-8 around escapes", () => {
  assert.equal(decodeMountinfoPath(String.raw`/a\04`), String.raw`/a\04`);
  assert.equal(decodeMountinfoPath(String.raw`/a\089`), String.raw`/a\089`);
  assert.equal(decodeMountinfoPath(String.raw`/a\400`), String.raw`/a\400`);
  assert.equal(decodeMountinfoPath(String.raw`/\134\134`), "/\\\\");
  assert.equal(decodeMountinfoPath(String.raw`/tür\040é`), "/tür é");
  assert.equal(decodeMountinfoPath(String.raw`/\303\274`), "/ü");
});

Deno.test("parseMountinfo skips malformed lines and keeps the good ones", () => {
  const good = "50 1 0:1 / /ok rw - tmpfs tmpfs rw";
  const bad = [
    "garbage",
    "50 1 0:1 / /no-separator rw tmpfs tmpfs rw",
    "x 1 0:1 / /bad-id rw - tmpfs tmpfs rw",
    "50 1 01 / /bad-device rw - tmpfs tmpfs rw",
    "50 1 0:1 / relative rw - tmpfs tmpfs rw",
    "50 1 0:1 / /too-few rw - tmpfs tmpfs",
    "50 1 0:1 / /too-many rw - tmpfs tmpfs rw extra",
    "50 1 0:1 / /no-fstype rw -  tmpfs rw",
    "- - - - - - - - - -",
    "\0\0\0",
  ];
  assert.deepEqual(parseMountinfo([...bad, good, ""].join("\n")).map((e) => e.mountPoint), ["/ok"]);
});

Deno.test("parseMountinfo never throws on generated garbage", () => {
  // A small deterministic generator (xorshift) over characters that matter to the parser.
  const alphabet = [" ", "-", "\\", "0", "1", "7", "9", ":", "/", "\n", "\t", ",", "a", "é", "\u{1F600}"];
  let state = 0x9e3779b9;
  const next = () => {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    return (state >>> 0) % alphabet.length;
  };
  for (let round = 0; round < 2000; round++) {
    const text = Array.from({ length: 1 + (round % 120) }, () => alphabet[next()]).join("");
    const entries = parseMountinfo(text);
    for (const entry of entries) assert.ok(entry.mountPoint.startsWith("/"));
  }
});

Deno.test("readMountinfo parses this process's real mount table", async () => {
  const raw = await Deno.readTextFile("/proc/self/mountinfo");
  const entries = await readMountinfo();
  assert.equal(entries.length, raw.trimEnd().split("\n").length);
  assert.ok(entries.some((entry) => entry.mountPoint === "/"));
});
