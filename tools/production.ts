/**
 * The production configuration of the driver, in one place: where the bundle is, the permissions and the
 * V8 flags it runs with. `deno task compile` bakes them into the binary (tools/compile.ts), `deno task
 * prod` runs the bundle with them under `deno run` (tools/prod.ts), and the bench and the end-to-end tests
 * start the driver through {@link prodRunArgs}, so all of them run the same program the same way.
 *
 * Heap sizing rule (V8 does not look at the container's memory limit; left alone it sizes its heap from
 * the node's RAM and a pod-churning driver is OOM-killed long before the heap ceiling):
 *
 *   DaemonSet memory limit ≥ runtime (non-heap RSS) + young generation + old space + tmpfs pages
 *
 * - runtime: the Deno binary's resident code, native allocations and thread stacks, {@link RUNTIME_MIB}
 *   (measured: RSS minus V8's heap of an idle driver, bench `memory.artifact.*`);
 * - young generation: 3 × the semi-space (two semi-spaces and the new large-object space);
 * - old space: {@link MAX_OLD_SPACE_MIB}, above the largest live heap measured (10,000
 *   SecretProviderClasses in the cache, 110 volumes mounted) with room for V8 to collect lazily;
 * - tmpfs pages: every volume's files are charged to the cgroup of the process that writes them, i.e.
 *   this container. {@link TMPFS_BUDGET_MIB} covers 110 volumes of ~128 KiB each; a node whose volumes
 *   hold more must raise the limit by what they hold (the per-volume cap, `--tmpfs-size`, bounds it).
 *
 * tests/unit/production_test.ts checks that the DaemonSet's limit satisfies the rule.
 */

/** The driver container's memory limit in manifests/daemonset.yaml (MiB), no higher than upstream's. */
export const DAEMONSET_MEMORY_LIMIT_MIB = 200;
/** Non-heap resident memory of the runtime (MiB). */
export const RUNTIME_MIB = 48;
/** Room for the volumes' tmpfs pages (MiB). */
export const TMPFS_BUDGET_MIB = 16;
/** V8's semi-space ceiling (MiB): small, so short-lived request garbage is collected early and often. */
export const MAX_SEMI_SPACE_MIB = 1;
/** V8's old-space ceiling (MiB). */
export const MAX_OLD_SPACE_MIB = 128;

/** The production V8 flags. */
export const V8_FLAGS: readonly string[] = [
  `--max-old-space-size=${MAX_OLD_SPACE_MIB}`,
  `--max-semi-space-size=${MAX_SEMI_SPACE_MIB}`,
  // Grow the heap in smaller steps and keep it compact: RSS follows the live heap more closely.
  "--optimize-for-size",
];

/**
 * Permissions of the driver: all of them. It runs privileged (mount(2) through FFI, sockets in host
 * directories, the kubeconfig's exec plugins), so narrower Deno permissions would not confine it.
 */
export const PERMISSIONS: readonly string[] = ["--allow-all"];

/** Where `deno task bundle` writes the code-split bundle (relative to the repository root). */
export const BUNDLE_DIR = "dist/bundle";
/** The bundle's entry module. */
export const BUNDLE_ENTRY = `${BUNDLE_DIR}/main.js`;
/** The compiled binary. */
export const BINARY = "dist/secrets-store-csi";

/** The repository root, as a path ending in `/`. */
export const REPO_ROOT = new URL("../", import.meta.url).pathname;

/**
 * Flags shared by `deno compile` and `deno run`: permissions, V8 flags, and no deno.json (the binary
 * does not read one; the bundle has no imports left to map).
 */
export function runtimeFlags(v8Flags: readonly string[] = V8_FLAGS): string[] {
  const v8 = v8Flags.length ? [`--v8-flags=${v8Flags.join(",")}`] : [];
  return [...PERMISSIONS, ...v8, "--no-config", "--no-lock"];
}

/**
 * `deno` arguments that run the bundle (absolute path) exactly as the compiled binary runs; the bench
 * passes other `v8Flags` to measure alternatives.
 */
export function prodRunArgs(args: readonly string[], v8Flags: readonly string[] = V8_FLAGS): string[] {
  return ["run", ...runtimeFlags(v8Flags), `${REPO_ROOT}${BUNDLE_ENTRY}`, ...args];
}
