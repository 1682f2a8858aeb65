/**
 * The CSI Identity service: who the driver is, what it offers, whether it is ready.
 */

/** GetPluginInfoResponse. */
export interface PluginInfo {
  name: string;
  vendor_version: string;
  manifest: Record<string, string>;
}

/** PluginCapability: the `service` arm of its oneof (the driver never advertises volume expansion). */
export interface PluginCapability {
  service?: { type: string } | null;
  volume_expansion?: { type: string } | null;
  type?: "service" | "volume_expansion";
}

/** GetPluginCapabilitiesResponse. */
export interface PluginCapabilities {
  capabilities: PluginCapability[];
}

/** ProbeResponse: `ready` is a google.protobuf.BoolValue; unset means ready. */
export interface ProbeResult {
  ready: { value: boolean } | null;
}

/** What the Identity service reports. */
export interface IdentityOptions {
  driverName: string;
  version: string;
  /** Readiness for Probe; the driver is ready when absent. */
  ready?: () => Promise<boolean>;
}

/** Handlers of `csi.v1.Identity`, keyed by RPC name. */
export function identityHandlers(options: IdentityOptions) {
  return {
    GetPluginInfo: (): Promise<PluginInfo> =>
      Promise.resolve({ name: options.driverName, vendor_version: options.version, manifest: {} }),

    // Upstream advertises CONTROLLER_SERVICE although its controller only answers ControllerGetCapabilities:
    // conformance suites (csi-sanity) then probe the controller and expect that answer.
    GetPluginCapabilities: (): Promise<PluginCapabilities> =>
      Promise.resolve({ capabilities: [{ service: { type: "CONTROLLER_SERVICE" } }] }),

    Probe: async (): Promise<ProbeResult> => ({
      ready: { value: options.ready ? await options.ready() : true },
    }),
  };
}
