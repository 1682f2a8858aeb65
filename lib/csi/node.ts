/**
 * The CSI Node service: checks kubelet's arguments exactly as upstream does (same order, same
 * INVALID_ARGUMENT messages), then hands publish / unpublish to the volume use case. Nothing else happens here.
 */
import { DriverError, GrpcStatus, invalidArgument } from "../errors.ts";
import type { VolumeService } from "../volume/ports.ts";

/** VolumeCapability as decoded (fields as in proto/csi.proto). */
export interface VolumeCapability {
  block?: Record<string, never> | null;
  mount?: { fs_type?: string; mount_flags?: string[]; volume_mount_group?: string } | null;
  access_mode?: { mode?: string | number } | null;
  access_type?: "block" | "mount";
}

/** NodePublishVolumeRequest. */
export interface NodePublishVolumeRequest {
  volume_id?: string;
  publish_context?: Record<string, string>;
  staging_target_path?: string;
  target_path?: string;
  volume_capability?: VolumeCapability | null;
  readonly?: boolean;
  /** nodePublishSecretRef data: never logged. */
  secrets?: Record<string, string>;
  /** Pod info and SPC name; may hold service account tokens: never logged. */
  volume_context?: Record<string, string>;
}

/** NodeUnpublishVolumeRequest. */
export interface NodeUnpublishVolumeRequest {
  volume_id?: string;
  target_path?: string;
}

/** NodeStageVolumeRequest. */
export interface NodeStageVolumeRequest {
  volume_id?: string;
  publish_context?: Record<string, string>;
  staging_target_path?: string;
  volume_capability?: VolumeCapability | null;
  secrets?: Record<string, string>;
  volume_context?: Record<string, string>;
}

/** NodeUnstageVolumeRequest. */
export interface NodeUnstageVolumeRequest {
  volume_id?: string;
  staging_target_path?: string;
}

/** NodeGetVolumeStatsRequest. */
export interface NodeGetVolumeStatsRequest {
  volume_id?: string;
  volume_path?: string;
  staging_target_path?: string;
}

/** NodeExpandVolumeRequest. */
export interface NodeExpandVolumeRequest {
  volume_id?: string;
  volume_path?: string;
  capacity_range?: { required_bytes?: string | number; limit_bytes?: string | number } | null;
  staging_target_path?: string;
  volume_capability?: VolumeCapability | null;
  secrets?: Record<string, string>;
}

/** NodeServiceCapability: its `rpc` oneof arm. */
export interface NodeCapability {
  rpc?: { type: string } | null;
  type?: "rpc";
}

/** NodeGetCapabilitiesResponse. */
export interface NodeCapabilities {
  capabilities: NodeCapability[];
}

/** NodeGetInfoResponse (64-bit integers travel as decimal strings). */
export interface NodeInfo {
  node_id: string;
  max_volumes_per_node: string | number;
  accessible_topology: { segments: Record<string, string> } | null;
}

/** The empty responses (NodePublishVolumeResponse, ...). */
export type Empty = Record<string, never>;

/** What the Node service needs. */
export interface NodeOptions {
  nodeId: string;
  volumes: VolumeService;
}

const MISSING_CAPABILITY = "Volume capability missing in request";
const MISSING_VOLUME_ID = "Volume ID missing in request";
// Upstream reports a missing staging_target_path with this same sentence.
const MISSING_TARGET_PATH = "Target path missing in request";
const MISSING_CONTEXT = "Volume attributes missing in request";
const NOT_READONLY = "Readonly is not true in request";
/** The largest gid: (gid_t)-1 means "unchanged" to chown(2), so it is not a group. */
const MAX_GID = 0xfffffffe;

/**
 * The pod's fsGroup from `volume_mount_group` (sent because the driver advertises VOLUME_MOUNT_GROUP):
 * undefined when absent, a gid when it is a decimal number, INVALID_ARGUMENT otherwise.
 */
function mountGroup(capability: VolumeCapability): number | undefined {
  const value = capability.mount?.volume_mount_group ?? "";
  if (value === "") return undefined;
  const gid = /^\d{1,10}$/.test(value) ? Number(value) : NaN;
  if (!(gid <= MAX_GID)) {
    throw invalidArgument(
      `volume_mount_group ${JSON.stringify(value)} is not a group id (a decimal number up to ${MAX_GID})`,
    );
  }
  return gid;
}

function unimplemented(message: string): DriverError {
  return new DriverError(GrpcStatus.UNIMPLEMENTED, message);
}

function requireText(value: string | undefined, message: string): string {
  if (!value) throw invalidArgument(message);
  return value;
}

/** Handlers of `csi.v1.Node`, keyed by RPC name. */
export function nodeHandlers({ nodeId, volumes }: NodeOptions) {
  return {
    NodePublishVolume: async (req: NodePublishVolumeRequest): Promise<Empty> => {
      if (!req.volume_capability) throw invalidArgument(MISSING_CAPABILITY);
      const volumeId = requireText(req.volume_id, MISSING_VOLUME_ID);
      const targetPath = requireText(req.target_path, MISSING_TARGET_PATH);
      const volumeContext = req.volume_context ?? {};
      if (Object.keys(volumeContext).length === 0) throw invalidArgument(MISSING_CONTEXT);
      // Secrets are served read-only: a writable publish is refused rather than silently downgraded.
      if (!req.readonly) throw invalidArgument(NOT_READONLY);
      const group = mountGroup(req.volume_capability);
      await volumes.publish({
        volumeId,
        targetPath,
        readonly: true,
        volumeContext: { ...volumeContext },
        secrets: { ...req.secrets },
        ...(group === undefined ? {} : { mountGroup: group }),
      });
      return {};
    },

    NodeUnpublishVolume: async (req: NodeUnpublishVolumeRequest): Promise<Empty> => {
      const volumeId = requireText(req.volume_id, MISSING_VOLUME_ID);
      const targetPath = requireText(req.target_path, MISSING_TARGET_PATH);
      await volumes.unpublish(volumeId, targetPath);
      return {};
    },

    // Advertised (STAGE_UNSTAGE_VOLUME) like upstream, but there is nothing to stage: arguments only.
    NodeStageVolume: (req: NodeStageVolumeRequest): Promise<Empty> => {
      requireText(req.volume_id, MISSING_VOLUME_ID);
      requireText(req.staging_target_path, MISSING_TARGET_PATH);
      if (!req.volume_capability) throw invalidArgument(MISSING_CAPABILITY);
      return Promise.resolve({});
    },

    NodeUnstageVolume: (req: NodeUnstageVolumeRequest): Promise<Empty> => {
      requireText(req.volume_id, MISSING_VOLUME_ID);
      requireText(req.staging_target_path, MISSING_TARGET_PATH);
      return Promise.resolve({});
    },

    NodeGetVolumeStats: (_req: NodeGetVolumeStatsRequest): Promise<never> =>
      Promise.reject(
        unimplemented("NodeGetVolumeStats is not implemented: the driver does not report volume statistics"),
      ),

    NodeExpandVolume: (_req: NodeExpandVolumeRequest): Promise<never> =>
      Promise.reject(
        unimplemented("NodeExpandVolume is not implemented: secrets-store volumes cannot be resized"),
      ),

    NodeGetCapabilities: (): Promise<NodeCapabilities> =>
      // VOLUME_MOUNT_GROUP: kubelet hands the pod's fsGroup to the driver (beyond upstream; lib/files/).
      Promise.resolve({
        capabilities: [{ rpc: { type: "STAGE_UNSTAGE_VOLUME" } }, { rpc: { type: "VOLUME_MOUNT_GROUP" } }],
      }),

    NodeGetInfo: (): Promise<NodeInfo> =>
      Promise.resolve({ node_id: nodeId, max_volumes_per_node: 0, accessible_topology: null }),
  };
}
