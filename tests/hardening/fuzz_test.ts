/**
 * Property-based tests (fast-check) of the two parsers that see untrusted bytes: the provider payload
 * validator and the mountinfo reader. Beyond tests/unit/payload_test.ts (which checks that no accepted
 * single path escapes) these compare whole payloads against an independent statement of the rules in
 * both directions, and feed the mountinfo parser mutated real lines and kernel-escaped paths. A failure
 * prints fast-check's seed and the shrunk counterexample; rerun with `fc.assert(..., { seed })`.
 */
import assert from "node:assert/strict";
import { posix } from "node:path";
import fc from "fast-check";
import { PayloadError } from "../../lib/errors.ts";
import { MAX_NAME_BYTES, MAX_PATH_BYTES, validatePayload } from "../../lib/files/payload.ts";
import { decodeMountinfoPath, parseMountinfo } from "../../lib/mount/mountinfo.ts";
import type { ProviderFile } from "../../lib/volume/ports.ts";

const RUNS = 3000;
const utf8 = (s: string) => new TextEncoder().encode(s).length;

// ---- validatePayload ------------------------------------------------------------------------------

/** Small limits, so that random payloads hit them. */
const LIMITS = { maxFiles: 4, maxTotalBytes: 48 };

/** The payload rules, stated independently of lib/files/payload.ts (its module comment is the spec). */
function pathIsAcceptable(path: string): boolean {
  if (path === "" || path.includes("\0") || !path.isWellFormed() || path.startsWith("/")) return false;
  if (utf8(path) > MAX_PATH_BYTES || path.startsWith("..")) return false;
  const clean = posix.normalize(path) === path && !path.endsWith("/");
  const elements = path.split("/");
  return clean && elements.every((e) => e !== "" && e !== "." && e !== ".." && utf8(e) <= MAX_NAME_BYTES);
}

function payloadIsAcceptable(files: unknown[]): boolean {
  if (files.length > LIMITS.maxFiles) return false;
  const paths: string[] = [];
  let total = 0;
  for (const entry of files) {
    const file = entry as Partial<ProviderFile> | null;
    if (typeof file?.path !== "string" || !pathIsAcceptable(file.path)) return false;
    if (!Number.isInteger(file.mode) || file.mode! < 0 || file.mode! > 0o777) return false;
    if (!(file.contents instanceof Uint8Array)) return false;
    paths.push(file.path);
    total += file.contents.byteLength;
  }
  if (new Set(paths).size !== paths.length || total > LIMITS.maxTotalBytes) return false;
  // No file may also be the directory of another.
  return !paths.some((p) => paths.some((q) => q.startsWith(`${p}/`)));
}

/** Pieces that make the interesting paths: separators, dots, NUL, lone surrogates, near-limit names. */
const pathPiece = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.constantFrom("a", "b", "/", ".", "..", "..data", "\0", "\uDC00", "é", " ", "\\"),
  },
  { weight: 3, arbitrary: fc.string({ maxLength: 3 }) },
  { weight: 1, arbitrary: fc.integer({ min: 250, max: 260 }).map((n) => "x".repeat(n)) },
  { weight: 1, arbitrary: fc.integer({ min: 125, max: 130 }).map((n) => "é".repeat(n)) },
);
const shortPath = fc.array(pathPiece, { maxLength: 6 }).map((pieces) => pieces.join(""));
/** Paths around the 4096-byte limit, built from valid 200–255 byte elements. */
const longPath = fc.array(fc.integer({ min: 200, max: 255 }).map((n) => "y".repeat(n)), {
  minLength: 15,
  maxLength: 21,
}).map((elements) => elements.join("/"));
/** Paths of exactly 4090–4100 bytes, around the limit. */
const boundaryPath = fc.integer({ min: MAX_PATH_BYTES - 6, max: MAX_PATH_BYTES + 4 }).map((total) => {
  const elements = Array.from({ length: Math.floor(total / 251) }, () => "y".repeat(250));
  const rest = total - (elements.length * 251 - 1) - 1;
  if (rest > 0) elements.push("z".repeat(rest));
  return elements.join("/");
});
/** Paths that share prefixes, so that duplicates and file/directory clashes happen often. */
const nestedPath = fc.array(fc.constantFrom("a", "b", "c"), { minLength: 1, maxLength: 3 }).map((e) =>
  e.join("/")
);
const anyPath = fc.oneof({ weight: 5, arbitrary: shortPath }, { weight: 1, arbitrary: longPath }, {
  weight: 1,
  arbitrary: boundaryPath,
}, {
  weight: 4,
  arbitrary: nestedPath,
});

const mode = fc.oneof(
  { weight: 8, arbitrary: fc.integer({ min: -2, max: 0o1001 }) },
  { weight: 1, arbitrary: fc.constantFrom(0.5, 420.1, NaN, Infinity, -0, 2 ** 53) },
  { weight: 1, arbitrary: fc.constantFrom("420", null, undefined, 420n) },
);
const contents = fc.oneof(
  { weight: 9, arbitrary: fc.uint8Array({ maxLength: 20 }) },
  { weight: 1, arbitrary: fc.constantFrom("text", [1, 2], null, new ArrayBuffer(2)) },
);
const entry = fc.oneof(
  { weight: 20, arbitrary: fc.record({ path: anyPath, mode, contents }) },
  {
    weight: 1,
    arbitrary: fc.constantFrom(null, undefined, {}, { path: 7, mode: 420, contents: new Uint8Array() }),
  },
);

Deno.test("fuzz: validatePayload accepts exactly the payloads the rules allow, and only throws PayloadError", () => {
  fc.assert(
    fc.property(fc.array(entry, { maxLength: 6 }), (files) => {
      let accepted = true;
      try {
        validatePayload(files as ProviderFile[], LIMITS);
      } catch (err) {
        if (!(err instanceof PayloadError)) throw err;
        accepted = false;
      }
      assert.equal(
        accepted,
        payloadIsAcceptable(files),
        accepted ? "accepted a bad payload" : "refused a good one",
      );
    }),
    { numRuns: RUNS },
  );
});

Deno.test("fuzz: every accepted file lands strictly inside the target, under its own name", () => {
  const root = "/var/lib/kubelet/pods/uid/volumes/kubernetes.io~csi/v/mount";
  fc.assert(
    fc.property(
      fc.array(fc.record({ path: anyPath, mode: fc.constant(0o644), contents }), { maxLength: 4 }),
      (files) => {
        try {
          validatePayload(files as ProviderFile[], LIMITS);
        } catch (err) {
          if (err instanceof PayloadError) return;
          throw err;
        }
        const resolved = new Set<string>();
        for (const { path } of files) {
          const full = posix.resolve(root, path);
          assert.ok(
            full.startsWith(`${root}/`) && full.length > root.length + 1,
            `${path} leaves the target`,
          );
          resolved.add(full);
        }
        // Two different accepted paths never name the same file.
        assert.equal(resolved.size, files.length);
      },
    ),
    { numRuns: RUNS },
  );
});

// ---- mountinfo -------------------------------------------------------------------------------------

/** How the kernel writes a path in mountinfo (fs/proc_namespace.c: mangle " \t\n\\"). */
function kernelEscape(path: string): string {
  return path.replace(/[ \t\n\\]/g, (c) => `\\${c.charCodeAt(0).toString(8).padStart(3, "0")}`);
}

/** Any well-formed string; the parser works on what the kernel wrote, which is UTF-8 bytes. */
const anyText = fc.string({ unit: "binary", maxLength: 40 }).filter((s) => s.isWellFormed());
const mountPath = anyText.map((s) => `/${s}`);

interface Line {
  mountId: number;
  parentId: number;
  root: string;
  mountPoint: string;
  source: string;
  fsType: string;
}

const validLine = fc.record({
  mountId: fc.nat(1_000_000),
  parentId: fc.nat(1_000_000),
  root: mountPath,
  mountPoint: mountPath,
  source: anyText,
  fsType: fc.constantFrom("tmpfs", "ext4", "proc", "fuse.sshfs"),
});

function render(line: Line): string {
  return `${line.mountId} ${line.parentId} 0:42 ${kernelEscape(line.root)} ${
    kernelEscape(line.mountPoint)
  } ` +
    `rw,nosuid shared:1 - ${line.fsType} ${kernelEscape(line.source)} rw,size=1024k`;
}

Deno.test("fuzz: kernel-escaped paths round-trip through decodeMountinfoPath and parseMountinfo", () => {
  fc.assert(
    fc.property(fc.array(validLine, { minLength: 1, maxLength: 5 }), (lines) => {
      for (const line of lines) {
        assert.equal(decodeMountinfoPath(kernelEscape(line.mountPoint)), line.mountPoint);
      }
      const parsed = parseMountinfo(lines.map(render).join("\n") + "\n");
      assert.deepEqual(
        parsed.map((e) => [e.mountId, e.parentId, e.root, e.mountPoint, e.fsType, e.source]),
        lines.map((l) => [l.mountId, l.parentId, l.root, l.mountPoint, l.fsType, l.source]),
      );
    }),
    { numRuns: RUNS },
  );
});

/** A valid line with some of its space-separated fields replaced, dropped or duplicated. */
const mutatedLine = fc.tuple(
  validLine,
  fc.array(fc.tuple(fc.nat(12), fc.constantFrom("drop", "dup", "junk"), fc.string({ maxLength: 6 })), {
    maxLength: 3,
  }),
).map(([line, edits]) => {
  const fields = render(line).split(" ");
  for (const [at, kind, junk] of edits) {
    const i = at % fields.length;
    if (kind === "drop") fields.splice(i, 1);
    else if (kind === "dup") fields.splice(i, 0, fields[i]);
    else fields[i] = junk;
  }
  return fields.join(" ");
});

Deno.test("fuzz: parseMountinfo never throws and keeps valid lines among mutated and random ones", () => {
  const junk = fc.oneof(
    mutatedLine,
    fc.string({ maxLength: 80 }),
    fc.string({ unit: "binary", maxLength: 80 }),
  );
  const item = fc.oneof(
    junk.map((text) => ({ text, valid: undefined })),
    validLine.map((l) => ({ text: render(l), valid: l })),
  );
  fc.assert(
    fc.property(fc.array(item, { maxLength: 8 }), (items) => {
      const entries = parseMountinfo(items.map((i) => i.text).join("\n"));
      for (const entry of entries) {
        assert.ok(entry.mountPoint.startsWith("/"), `mount point ${JSON.stringify(entry.mountPoint)}`);
        assert.ok(Number.isSafeInteger(entry.mountId) && entry.fsType !== "");
      }
      // Every valid line is among the entries, in order (a mutated line may still be valid too).
      let at = 0;
      for (const { valid } of items) {
        if (!valid) continue;
        while (at < entries.length && entries[at].mountPoint !== valid.mountPoint) at++;
        assert.ok(at < entries.length, `the valid line for ${JSON.stringify(valid.mountPoint)} was lost`);
        at++;
      }
    }),
    { numRuns: RUNS },
  );
});
