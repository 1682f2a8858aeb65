/**
 * The CSI Controller service. Secrets-store volumes are inline ephemeral volumes: there is nothing to
 * provision or attach, so only ControllerGetCapabilities is served (every other Controller RPC is absent from
 * proto/csi.proto and gRPC answers it UNIMPLEMENTED).
 */

/** ControllerServiceCapability: its `rpc` oneof arm. */
export interface ControllerCapability {
  rpc?: { type: string } | null;
  type?: "rpc";
}

/** ControllerGetCapabilitiesResponse. */
export interface ControllerCapabilities {
  capabilities: ControllerCapability[];
}

/** Handlers of `csi.v1.Controller`, keyed by RPC name. */
export function controllerHandlers() {
  return {
    // One capability of type UNKNOWN, as upstream: conformance suites fail on an empty list, and UNKNOWN
    // promises no controller RPC.
    ControllerGetCapabilities: (): Promise<ControllerCapabilities> =>
      Promise.resolve({ capabilities: [{ rpc: { type: "UNKNOWN" } }] }),
  };
}
