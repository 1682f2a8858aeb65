/** The driver's identity, reported by GetPluginInfo, `--version` and the embedded `local` provider. */

/** CSI driver name (upstream's default `--drivername`). */
export const DRIVER_NAME = "secrets-store.csi.k8s.io";

/** This driver's release. */
export const DRIVER_VERSION = "v0.1.0";

/**
 * `--version`'s output, upstream's JSON (pkg/version.PrintVersion) field for field. Upstream's release
 * builds stamp the commit and date with -ldflags; this build has neither, so both are empty, as in an
 * upstream build made with plain `go build`.
 */
export function upstreamVersionJson(): string {
  return JSON.stringify({ BuildVersion: DRIVER_VERSION, GitCommit: "", BuildDate: "" });
}
