import assert from "node:assert/strict";
import { posix } from "node:path";
import fc from "fast-check";
import { DriverError, GrpcStatus, PayloadError } from "../../lib/errors.ts";
import {
  BLOCK_BYTES,
  DEFAULT_MAX_FILES,
  payloadBlocks,
  type PayloadLimits,
  quotePath,
  validatePayload,
} from "../../lib/files/payload.ts";
import type { ProviderFile } from "../../lib/volume/ports.ts";

const LIMITS: PayloadLimits = { maxTotalBytes: 1024 * 1024, maxFiles: DEFAULT_MAX_FILES };
const bytes = (s: string) => new TextEncoder().encode(s);
const file = (path: string, mode = 0o644, contents = bytes("x")): ProviderFile => ({ path, mode, contents });

/** Asserts that validation fails with a PayloadError whose message contains every one of `parts`. */
function rejects(files: ProviderFile[], parts: string[], limits = LIMITS): void {
  assert.throws(() => validatePayload(files, limits), (err: unknown) => {
    assert.ok(err instanceof PayloadError, `expected a PayloadError, got ${err}`);
    for (const part of parts) assert.ok(err.message.includes(part), `${err.message} lacks ${part}`);
    return true;
  });
}

Deno.test("accepts relative files, nested directories and names merely containing dots", () => {
  validatePayload([
    file("token"),
    file("certs/tls.crt", 0o400),
    file("certs/ca/root.pem", 0),
    file("a..b"),
    file("dir/..hidden", 0o777),
    file(".dotfile"),
    file("ünïcödé/ключ"),
  ], LIMITS);
  validatePayload([], LIMITS);
});

Deno.test("a PayloadError is an INTERNAL DriverError", () => {
  try {
    validatePayload([file("/etc/passwd")], LIMITS);
    assert.fail("absolute path accepted");
  } catch (err) {
    assert.ok(err instanceof DriverError);
    assert.equal(err.code, GrpcStatus.INTERNAL);
    assert.equal(err.name, "PayloadError");
  }
});

Deno.test("rejects absolute paths", () => {
  rejects([file("/etc/passwd")], ['"/etc/passwd"', "absolute"]);
  rejects([file("/")], ["absolute"]);
});

Deno.test("rejects .. elements anywhere", () => {
  rejects([file("..")], ['".."', '".." element']);
  rejects([file("../x")], ['"../x"', '".." element']);
  rejects([file("a/../../x")], ['"a/../../x"', '".." element']);
  rejects([file("a/b/..")], ['".." element']);
});

Deno.test("rejects a leading .. prefix, which is reserved for the writer", () => {
  rejects([file("..data")], ['"..data"', 'starts with ".."']);
  rejects([file("..data_tmp")], ["reserved"]);
  rejects([file("..2024_01_01_00_00_00.1234/x")], ["reserved"]);
  rejects([file("..x/y")], ['"..x/y"', "reserved"]);
});

Deno.test("rejects modes outside 0..511 and non-integer modes", () => {
  rejects([file("a", 512)], ['"a"', "mode 512", "0 to 511"]);
  rejects([file("a", -1)], ["mode -1"]);
  rejects([file("a", 1.5)], ["mode 1.5"]);
  rejects([file("a", NaN)], ["mode NaN"]);
  rejects([{ path: "a", mode: "420" as unknown as number, contents: bytes("") }], ['mode "420"']);
  validatePayload([file("a", 0), file("b", 511)], LIMITS);
});

Deno.test("rejects an empty path, NUL bytes and lone surrogates", () => {
  rejects([file("")], ['""', "is empty"]);
  rejects([file("a\0b")], ['"a\\u0000b"', "NUL"]);
  rejects([file("bad\uD800name")], ["well-formed Unicode"]);
});

Deno.test("rejects elements over 255 bytes and paths over 4096 bytes, counting UTF-8 bytes", () => {
  validatePayload([file("a".repeat(255))], LIMITS);
  rejects([file("a".repeat(256))], ["longer than 255 bytes"]);
  // 128 two-byte characters: 128 UTF-16 units but 256 bytes.
  rejects([file("é".repeat(128))], ["longer than 255 bytes"]);
  const deep = Array.from({ length: 16 }, () => "d".repeat(255)).join("/"); // 4095 bytes
  validatePayload([file(deep)], LIMITS);
  rejects([file(deep + "/x")], ["longer than 4096 bytes"]);
  rejects([file("x".repeat(10_000_000))], ["longer than 4096 bytes"]);
});

Deno.test("rejects non-clean paths instead of normalising them", () => {
  rejects([file("a//b")], ['"a//b"', "empty element"]);
  rejects([file("a/")], ["empty element"]);
  rejects([file("./a")], ['"." element']);
  rejects([file("a/./b")], ['"." element']);
  rejects([file(".")], ['"." element']);
});

Deno.test("rejects duplicate paths", () => {
  rejects([file("a/b"), file("c"), file("a/b")], ['"a/b"', "more than once"]);
});

Deno.test("rejects a path that is both a file and a directory", () => {
  rejects([file("a"), file("a/b")], ['"a" is both a file and the directory of "a/b"']);
  rejects([file("x/y/z"), file("x/y")], ['"x/y" is both a file and the directory of "x/y/z"']);
  validatePayload([file("ab"), file("a/b"), file("a-b/c")], LIMITS);
});

Deno.test("rejects a payload over the byte cap, counting every file", () => {
  const limits = { maxTotalBytes: 10, maxFiles: 10 };
  validatePayload([file("a", 0o644, new Uint8Array(5)), file("b", 0o644, new Uint8Array(5))], limits);
  rejects(
    [file("a", 0o644, new Uint8Array(5)), file("b", 0o644, new Uint8Array(6))],
    ["11 bytes", "limit of 10"],
    limits,
  );
});

Deno.test("accepts DEFAULT_MAX_FILES small files and rejects one more", () => {
  assert.equal(DEFAULT_MAX_FILES, 10_000);
  const many = Array.from({ length: DEFAULT_MAX_FILES }, (_, i) => file(`d${i % 100}/f${i}`));
  validatePayload(many, LIMITS);
  rejects([...many, file("one-more")], ["10001 files", "limit of 10000"]);
});

Deno.test("rejects malformed entries without crashing", () => {
  rejects([{ path: 7, mode: 0o644, contents: bytes("") } as unknown as ProviderFile], ["no path"]);
  rejects([null as unknown as ProviderFile], ["no path"]);
  rejects([{ path: "a", mode: 0o644, contents: "text" } as unknown as ProviderFile], ['"a"', "not bytes"]);
  rejects("nope" as unknown as ProviderFile[], ["not a list"]);
});

Deno.test("error messages quote hostile paths and cut them at 100 characters", () => {
  const hostile = "\n".repeat(50) + "/".repeat(5000);
  assert.throws(() => validatePayload([file(hostile)], LIMITS), (err: Error) => {
    assert.ok(!err.message.includes("\n"), "raw newline reached the message");
    assert.ok(err.message.length < 400, `message is ${err.message.length} characters long`);
    return true;
  });
  assert.equal(quotePath("a".repeat(100)), JSON.stringify("a".repeat(100)));
  assert.equal(quotePath("a".repeat(101)), JSON.stringify("a".repeat(100)) + "...");
});

// Random path strings, biased towards the pieces that make escapes: separators, dots, NUL, long runs.
const pathPiece = fc.oneof(
  fc.constantFrom("/", ".", "..", "...", "a", "b", "\0", "\\", "~", "é", "..data", " ", "%2e", "\uD800"),
  fc.string({ maxLength: 4 }),
  fc.string({ unit: "grapheme", maxLength: 3 }),
);
const randomPath = fc.array(pathPiece, { maxLength: 12 }).map((pieces) => pieces.join(""));

Deno.test("fuzz: no accepted path resolves outside the target or onto the writer's names", () => {
  const root = "/var/lib/kubelet/pods/uid/volumes/x/mount";
  fc.assert(
    fc.property(randomPath, (path) => {
      try {
        validatePayload([file(path)], LIMITS);
      } catch (err) {
        if (err instanceof PayloadError) return;
        throw err;
      }
      const resolved = posix.resolve(root, path);
      assert.ok(resolved.startsWith(root + "/"), `${JSON.stringify(path)} resolves to ${resolved}`);
      assert.equal(posix.relative(root, resolved), path, `${JSON.stringify(path)} is not in clean form`);
      assert.ok(!path.startsWith(".."), `${JSON.stringify(path)} collides with the writer's names`);
    }),
    { numRuns: 5000 },
  );
});

Deno.test("fuzz: clean relative paths of ordinary names are accepted", () => {
  const name = fc.string({ minLength: 1, maxLength: 20 }).filter((s) =>
    !s.includes("/") && !s.includes("\0") && !s.startsWith("..") && s !== "."
  );
  fc.assert(
    fc.property(fc.array(name, { minLength: 1, maxLength: 6 }), (elements) => {
      validatePayload([file(elements.join("/"))], LIMITS);
    }),
    { numRuns: 2000 },
  );
});

Deno.test("payloadBlocks counts tmpfs blocks: one per file at least, per directory, per long link", () => {
  const big = new Uint8Array(BLOCK_BYTES + 1);
  assert.equal(payloadBlocks([]), 1); // the timestamped directory
  assert.equal(payloadBlocks([file("a", 0o644, new Uint8Array(0))]), 2);
  assert.equal(payloadBlocks([file("a", 0o644, big)]), 3);
  assert.equal(payloadBlocks([file("d/e/a"), file("d/b")]), 1 + 2 + 2); // files, d and d/e
  // "..data/<name>" longer than 128 bytes does not fit in the inode.
  assert.equal(payloadBlocks([file("n".repeat(121))]), 2);
  assert.equal(payloadBlocks([file("n".repeat(122))]), 3);
});

Deno.test("a payload that would not fit twice in the volume is refused, naming blocks and the cap", () => {
  const limits = { ...LIMITS, volumeBytes: 64 * 1024 }; // 16 blocks: at most 8 per payload
  validatePayload(Array.from({ length: 7 }, (_, i) => file(`f${i}`)), limits);
  rejects(Array.from({ length: 8 }, (_, i) => file(`f${i}`)), [
    "(8 files) needs 36 KiB of the volume's tmpfs",
    "at most 32 KiB is accepted, half the volume's size cap of 65536 bytes (--tmpfs-size)",
    "a rotation can hold the old and the new payload side by side",
  ], limits);
});
