/**
 * An in-process driver for integration tests: the real CSI server on a unix socket, wired to the real
 * tmpfs mounter, atomic writer and gRPC provider client, with SecretProviderClasses from a directory and a
 * scripted TestProvider. Everything lives under one temp dir that `close()` unmounts and removes.
 */
import { join } from "node:path";
import { connectCsi, type CsiClient, kubeletPublishRequest } from "../../lib/csi/client.ts";
import type { NodePublishVolumeRequest } from "../../lib/csi/node.ts";
import { startCsiServer } from "../../lib/csi/server.ts";
import { type Wired, wireVolumes } from "../../lib/commands/wiring.ts";
import type { ProviderConfig } from "../../lib/config.ts";
import { type Logger, silentLogger } from "../../lib/log.ts";
import type { DriverMetrics } from "../../lib/metrics.ts";
import type { Published, RotationConfig, RotationFailure, SpcSource } from "../../lib/volume/ports.ts";
import { mountsUnder } from "../../lib/mount/mountinfo.ts";
import { MNT_DETACH, sysUmount2 } from "../../lib/mount/libc.ts";
import { SpcDirectory } from "../../lib/spc/files.ts";
import { requireRoot } from "./root.ts";
import { TestProvider } from "./test-provider.ts";

export interface TestDriver {
  dir: string;
  client: CsiClient;
  provider: TestProvider;
  wired: Wired;
  providerDir: string;
  /** Writes an SPC named `name` in namespace `default` for `provider` with the given parameters. */
  addSpc(name: string, provider: string, parameters?: Record<string, string>): Promise<void>;
  /** A target path below the temp dir, shaped like kubelet's. */
  target(pod: string): string;
  /** A NodePublishVolume request for `pod` using SPC `spc`. */
  publishRequest(pod: string, spc?: string): NodePublishVolumeRequest;
  /** Mounts currently below the temp dir. */
  mounts(): Promise<string[]>;
  close(): Promise<void>;
}

export interface TestDriverOptions {
  provider?: Partial<ProviderConfig>;
  rotation?: RotationConfig;
  metrics?: DriverMetrics;
  log?: Logger;
  /** The driver's clock (ms); rotation tests move it. */
  now?: () => number;
  /** SecretProviderClasses from here instead of the temp dir's spc/ (addSpc then writes unused files). */
  spcs?: SpcSource;
  afterPublish?: (published: Published) => Promise<void>;
  afterUnpublish?: (targetPath: string) => Promise<void>;
  rotationFailed?: (failure: RotationFailure) => Promise<void>;
  /** NodeGetInfo's node id (default node-1). */
  nodeId?: string;
}

/** Starts a driver with a TestProvider named `test` and an SPC `spc-test` pointing at it. */
export async function startTestDriver(options: TestDriverOptions = {}): Promise<TestDriver> {
  const dir = await Deno.makeTempDir({ prefix: "sscsi-driver-" });
  const providerDir = join(dir, "providers");
  const spcDir = join(dir, "spc");
  await Deno.mkdir(providerDir);
  await Deno.mkdir(spcDir);
  const provider = await TestProvider.start(providerDir, "test");
  const config: ProviderConfig = {
    dirs: [providerDir],
    maxRecvBytes: 4 * 1024 * 1024,
    timeoutMs: 5_000,
    tmpfsSizeBytes: 1024 * 1024,
    // Targets are kubelet-shaped paths below the temp dir (see target()).
    kubeletRootDir: dir,
    ...options.provider,
  };
  const log = options.log ?? silentLogger;
  const wired = wireVolumes(config, options.spcs ?? new SpcDirectory(spcDir), log, {
    rotation: options.rotation,
    metrics: options.metrics,
    now: options.now,
    afterPublish: options.afterPublish,
    afterUnpublish: options.afterUnpublish,
    rotationFailed: options.rotationFailed,
  });
  const endpoint = `unix://${join(dir, "csi.sock")}`;
  const server = await startCsiServer({
    endpoint,
    driverName: "secrets-store.csi.k8s.io",
    version: "test",
    nodeId: options.nodeId ?? "node-1",
    volumes: wired.volumes,
    log,
  });
  const client = connectCsi(endpoint);

  const addSpc = async (
    name: string,
    providerName: string,
    parameters: Record<string, string> = { a: "b" },
  ) => {
    const spc = {
      apiVersion: "secrets-store.csi.x-k8s.io/v1",
      kind: "SecretProviderClass",
      metadata: { name, namespace: "default" },
      spec: { provider: providerName, parameters },
    };
    await Deno.writeTextFile(join(spcDir, `${name}.json`), JSON.stringify(spc));
  };
  await addSpc("spc-test", "test");

  const target = (pod: string) => join(dir, "pods", pod, "volumes/kubernetes.io~csi/secrets/mount");
  const publishRequest = (pod: string, spc = "spc-test"): NodePublishVolumeRequest =>
    kubeletPublishRequest({ pod, targetPath: target(pod), spc });

  const mounts = async () => (await mountsUnder(dir)).map((m) => m.mountPoint);

  const close = async () => {
    client.close();
    await server.shutdown(1_000);
    wired.providers.close();
    await provider.close();
    for (const mountPoint of (await mounts()).reverse()) sysUmount2(mountPoint, MNT_DETACH);
    await Deno.remove(dir, { recursive: true });
  };
  return { dir, client, provider, wired, providerDir, addSpc, target, publishRequest, mounts, close };
}

/** Runs `fn` with a fresh driver (needs root) and always closes it. */
export async function withTestDriver(
  fn: (d: TestDriver) => Promise<void>,
  options: TestDriverOptions = {},
): Promise<void> {
  requireRoot();
  const driver = await startTestDriver(options);
  try {
    await fn(driver);
  } finally {
    await driver.close();
  }
}

/** A gRPC failure as the client sees it. */
export interface GrpcFailure {
  code: number;
  details: string;
}

/** The error `call` fails with; throws when it succeeds. */
export async function grpcFailure(call: Promise<unknown>): Promise<GrpcFailure> {
  try {
    await call;
  } catch (err) {
    return err as GrpcFailure;
  }
  throw new Error("the call succeeded but should have failed");
}
