/**
 * The `v1alpha1.CSIDriverProvider` messages as @grpc/proto-loader hands them over (lib/proto.ts loads
 * with `keepCase` and `defaults`): snake_case fields, every field present, `bytes` as Uint8Array.
 * Both sides of the provider API use these shapes: the client (lib/provider/client.ts) and the servers
 * (lib/provider/server.ts, the `local` provider, the test provider).
 */

/** `v1alpha1.ObjectVersion`. */
export interface WireObjectVersion {
  id: string;
  version: string;
}

/** `v1alpha1.File`. */
export interface WireFile {
  path: string;
  mode: number;
  contents: Uint8Array;
}

/** `v1alpha1.VersionRequest`. */
export interface WireVersionRequest {
  version: string;
}

/** `v1alpha1.VersionResponse`. */
export interface WireVersionResponse {
  version: string;
  runtime_name: string;
  runtime_version: string;
}

/** `v1alpha1.MountRequest`. */
export interface WireMountRequest {
  attributes: string;
  secrets: string;
  target_path: string;
  permission: string;
  current_object_version: WireObjectVersion[];
}

/** `v1alpha1.MountResponse`; a provider may leave out any field. */
export interface WireMountResponse {
  object_version?: WireObjectVersion[];
  /** Set (with a non-empty code) when the provider failed: the code is the failure's reason. */
  error?: { code: string } | null;
  files?: WireFile[];
}

/** The API version both sides speak, sent in VersionRequest.version (upstream sends this constant). */
export const PROVIDER_API_VERSION = "v1alpha1";
