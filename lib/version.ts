/** The driver's identity, reported by GetPluginInfo, `--version` and the embedded `local` provider. */

/** CSI driver name (upstream's default `--drivername`). */
export const DRIVER_NAME = "secrets-store.csi.k8s.io";

/** This driver's release. */
export const DRIVER_VERSION = "v0.1.0";
