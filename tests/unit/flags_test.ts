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
  // Upstream's main.go: the additional paths first, then --provider-volume.
  assert.deepEqual(config.provider.dirs, [
    "/etc/kubernetes/secrets-store-csi-providers",
    "/var/run/secrets-store-csi-providers",
  ]);
  assert.equal(config.provider.maxRecvBytes, 4 * 1024 * 1024);
  assert.equal(config.pprofPort, undefined);
});

Deno.test("provider directories: every additional path in its order, then --provider-volume", () => {
  const { values } = parseFlags(
    ["--provider-volume=/p", "--additional-provider-volume-paths=/a, /b,,/p"],
    NODE_FLAGS,
  );
  assert.deepEqual(nodeConfig(values).provider.dirs, ["/a", "/b", "/p"]);
});

Deno.test("every flag upstream's binary defines parses, with upstream's defaults", () => {
  // `secrets-store-csi-driver -help` of upstream v1.6.0, flag names only.
  const upstream = [
    "add_dir_header",
    "additional-provider-volume-paths",
    "alsologtostderr",
    "drivername",
    "enable-pprof",
    "enable-secret-rotation",
    "endpoint",
    "kubeconfig",
    "log-format-json",
    "log_backtrace_at",
    "log_dir",
    "log_file",
    "log_file_max_size",
    "logtostderr",
    "max-call-recv-msg-size",
    "metrics-addr",
    "metrics-backend",
    "nodeid",
    "one_output",
    "pprof-port",
    "provider-health-check",
    "provider-health-check-interval",
    "provider-volume",
    "rotation-poll-interval",
    "skip_headers",
    "skip_log_headers",
    "stderrthreshold",
    "v",
    "version",
    "vmodule",
  ];
  for (const name of upstream) assert.ok(name in NODE_FLAGS, `--${name} is not a node flag`);
  const { values } = parseFlags([
    "--logtostderr=false",
    "--alsologtostderr",
    "--log_file=/var/log/x.log",
    "--log_dir=/var/log",
    "--log_file_max_size=10",
    "--skip_headers",
    "--skip_log_headers=true",
    "--add_dir_header=T",
    "--one_output=1",
    "--stderrthreshold=ERROR",
    "--log_backtrace_at=main.go:10",
    "--vmodule=publish=5,k8s/*=2",
    "--metrics-backend=prometheus",
    "--enable-pprof",
    "--pprof-port=7070",
  ], NODE_FLAGS);
  const config = nodeConfig(values);
  assert.equal(config.pprofPort, 7070);
  assert.deepEqual(config.logging.vmodule.map((r) => r.level), [5, 2]);
  assert.equal(config.nodeId, "", "--nodeid is optional upstream");
  const defaults = parseFlags([], NODE_FLAGS).values;
  assert.equal(defaults["metrics-backend"], "Prometheus");
  assert.equal(defaults["pprof-port"], "6065");
  assert.equal(defaults["logtostderr"], true);
  assert.equal(nodeConfig(defaults).metricsAddr, ":8095");
});

Deno.test("--metrics-addr as controller-runtime reads it: 0 is off, empty is :8080", () => {
  const addr = (arg: string) => nodeConfig(parseFlags([arg], NODE_FLAGS).values).metricsAddr;
  assert.equal(addr("--metrics-addr=0"), undefined);
  assert.equal(addr("--metrics-addr="), ":8080");
  assert.equal(addr("--metrics-addr=127.0.0.1:9000"), "127.0.0.1:9000");
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
    [["--metrics-backend=statsd"], /--metrics-backend: unsupported metrics backend "statsd"; Prometheus is/],
    [["--enable-pprof", "--pprof-port=70000"], /--pprof-port takes a port from 1 to 65535/],
    [["--vmodule=publish"], /--vmodule takes pattern=N pairs/],
    [["--stderrthreshold=LOUD"], /--stderrthreshold takes INFO, WARNING, ERROR or FATAL/],
    [["--log_file_max_size=big"], /--log_file_max_size takes a whole number/],
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
  assert.equal(parseDuration("d", "0"), 0, "Go's bare 0");
  assert.equal(parseDuration("d", "2m0s"), 120_000, "time.Duration's own String() form");
  assert.equal(parseDuration("d", "1500us"), 1.5);
  for (const bad of ["", "2", "m", "2m3", "-1s", "00"]) {
    assert.throws(() => parseDuration("d", bad), UsageError);
  }
  assert.equal(parseSize("s", "512Ki"), 524_288);
  assert.equal(parseSize("s", "4194304"), 4_194_304);
  for (const bad of ["0", "1.5Mi", "16M", "x"]) assert.throws(() => parseSize("s", bad), UsageError);
  assert.equal(parseInteger("v", "3"), 3);
  assert.throws(() => parseInteger("v", "3.5"), UsageError);
});
