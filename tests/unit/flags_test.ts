import assert from "node:assert/strict";
import { parseDuration, parseFlags, parseInteger, parseSize, UsageError } from "../../lib/flags.ts";
import { NODE_FLAGS, nodeConfig } from "../../lib/config.ts";

Deno.test("Go-style flags: -v=5, --flag=false, --flag=true, and defaults", () => {
  const { values } = parseFlags(
    ["-v=5", "--enable-secret-rotation=true", "--provider-health-check=false", "-nodeid", "n1"],
    NODE_FLAGS,
  );
  const config = nodeConfig(values);
  assert.equal(config.logging.verbosity, 5);
  assert.equal(config.rotation.enabled, true);
  assert.equal(config.healthCheck.enabled, false);
  assert.equal(config.nodeId, "n1");
  assert.equal(config.endpoint, "unix:///tmp/csi.sock");
  assert.equal(config.rotation.pollIntervalMs, 120_000);
  assert.equal(config.metricsAddr, ":8095");
  assert.deepEqual(config.provider.dirs, [
    "/var/run/secrets-store-csi-providers",
    "/etc/kubernetes/secrets-store-csi-providers",
  ]);
  assert.equal(config.provider.maxRecvBytes, 4 * 1024 * 1024);
});

Deno.test("an empty --additional-provider-volume-paths leaves only --provider-volume", () => {
  const { values } = parseFlags(
    ["--nodeid=n", "--provider-volume=/p", "--additional-provider-volume-paths=", "--tmpfs-size=2Mi"],
    NODE_FLAGS,
  );
  const config = nodeConfig(values);
  assert.deepEqual(config.provider.dirs, ["/p"]);
  assert.equal(config.provider.tmpfsSizeBytes, 2 * 1024 * 1024);
});

Deno.test("bad command lines are UsageErrors with one clear sentence", () => {
  const bad: [string[], RegExp][] = [
    [["--bogus"], /Unknown option '--bogus'/],
    [["--enable-secret-rotation=maybe"], /takes true or false/],
    [["--nodeid=n", "--rotation-poll-interval=2x"], /--rotation-poll-interval takes a duration/],
    [["--nodeid=n", "--max-call-recv-msg-size=-1"], /--max-call-recv-msg-size takes a positive size/],
    [["--nodeid=n", "-v=loud"], /--v takes a whole number/],
    [[], /--nodeid is required/],
    [["stray"], /Unexpected argument|unexpected argument/],
  ];
  for (const [args, pattern] of bad) {
    assert.throws(() => nodeConfig(parseFlags(args, NODE_FLAGS).values), (err: Error) => {
      assert.ok(err instanceof UsageError, `${args}: ${err}`);
      assert.match(err.message, pattern);
      assert.ok(!err.message.includes("\n"));
      return true;
    });
  }
});

Deno.test("durations, sizes and integers", () => {
  assert.equal(parseDuration("d", "2m"), 120_000);
  assert.equal(parseDuration("d", "1h30m"), 5_400_000);
  assert.equal(parseDuration("d", "500ms"), 500);
  assert.equal(parseDuration("d", "1.5s"), 1500);
  for (const bad of ["", "2", "m", "2m3", "-1s"]) assert.throws(() => parseDuration("d", bad), UsageError);
  assert.equal(parseSize("s", "512Ki"), 524_288);
  assert.equal(parseSize("s", "4194304"), 4_194_304);
  for (const bad of ["0", "1.5Mi", "16M", "x"]) assert.throws(() => parseSize("s", bad), UsageError);
  assert.equal(parseInteger("v", "3"), 3);
  assert.throws(() => parseInteger("v", "3.5"), UsageError);
});
