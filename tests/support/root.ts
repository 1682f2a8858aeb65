/** Helpers for tests that need real mounts. */

/** Fails (never skips) a test that needs root: CI runs as root, so a non-root run is a broken setup. */
export function requireRoot(): void {
  if (Deno.uid() !== 0) {
    throw new Error("this test mounts tmpfs and needs root (CAP_SYS_ADMIN); run `deno task test` as root");
  }
}
