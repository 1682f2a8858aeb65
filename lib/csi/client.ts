/**
 * A small promise-based CSI client over the driver's unix socket, for the demo, tests and benchmarks.
 * Requests and responses are plain objects with the proto's field names (snake_case); a failed call rejects
 * with the grpc-js ServiceError, whose `.code` is the gRPC status.
 */
import * as grpc from "@grpc/grpc-js";
import { guardClientSessions } from "../http2-goaway-guard.ts";
import { csiServices } from "../proto.ts";
import type { ControllerCapabilities } from "./controller.ts";
import { parseEndpoint } from "./endpoint.ts";
import type { PluginCapabilities, PluginInfo, ProbeResult } from "./identity.ts";
import type {
  Empty,
  NodeCapabilities,
  NodeExpandVolumeRequest,
  NodeGetVolumeStatsRequest,
  NodeInfo,
  NodePublishVolumeRequest,
  NodeStageVolumeRequest,
  NodeUnpublishVolumeRequest,
  NodeUnstageVolumeRequest,
} from "./node.ts";

/** NodeGetVolumeStatsResponse. */
export interface VolumeStats {
  usage: { available: string; total: string; used: string; unit: string }[];
  volume_condition: { abnormal: boolean; message: string } | null;
}

/** Every RPC the driver serves, as async methods. */
export interface CsiClient {
  getPluginInfo(): Promise<PluginInfo>;
  getPluginCapabilities(): Promise<PluginCapabilities>;
  probe(): Promise<ProbeResult>;
  controllerGetCapabilities(): Promise<ControllerCapabilities>;
  nodeStageVolume(request: NodeStageVolumeRequest): Promise<Empty>;
  nodeUnstageVolume(request: NodeUnstageVolumeRequest): Promise<Empty>;
  nodePublishVolume(request: NodePublishVolumeRequest): Promise<Empty>;
  nodeUnpublishVolume(request: NodeUnpublishVolumeRequest): Promise<Empty>;
  nodeGetVolumeStats(request: NodeGetVolumeStatsRequest): Promise<VolumeStats>;
  nodeExpandVolume(request: NodeExpandVolumeRequest): Promise<{ capacity_bytes: string }>;
  nodeGetCapabilities(): Promise<NodeCapabilities>;
  nodeGetInfo(): Promise<NodeInfo>;
  /** Closes the connection; pending calls fail. */
  close(): void;
}

type UnaryMethod = (
  request: unknown,
  callback: (err: grpc.ServiceError | null, response: unknown) => void,
) => grpc.ClientUnaryCall;

/** A promise-returning caller of one unary RPC of `client`. */
function rpc<T>(client: grpc.Client, name: string): (request?: unknown) => Promise<T> {
  const method = (client as unknown as Record<string, UnaryMethod>)[name].bind(client);
  return (request = {}) =>
    new Promise((resolve, reject) => {
      method(request, (err, response) => err ? reject(err) : resolve(response as T));
    });
}

/** Connects to the driver at `endpoint` (`unix:///path/csi.sock`, as `--endpoint`). */
export function connectCsi(endpoint: string): CsiClient {
  guardClientSessions(); // denoland/deno#36788: see lib/http2-goaway-guard.ts
  const target = `unix:${parseEndpoint(endpoint)}`;
  const services = csiServices();
  const credentials = grpc.credentials.createInsecure();
  // One channel for all three services, as kubelet does.
  const identity = new services.Identity(target, credentials);
  const channelOverride = { channelOverride: identity.getChannel() };
  const node = new services.Node(target, credentials, channelOverride);
  const controller = new services.Controller(target, credentials, channelOverride);

  return {
    getPluginInfo: rpc(identity, "GetPluginInfo"),
    getPluginCapabilities: rpc(identity, "GetPluginCapabilities"),
    probe: rpc(identity, "Probe"),
    controllerGetCapabilities: rpc(controller, "ControllerGetCapabilities"),
    nodeStageVolume: rpc(node, "NodeStageVolume"),
    nodeUnstageVolume: rpc(node, "NodeUnstageVolume"),
    nodePublishVolume: rpc(node, "NodePublishVolume"),
    nodeUnpublishVolume: rpc(node, "NodeUnpublishVolume"),
    nodeGetVolumeStats: rpc(node, "NodeGetVolumeStats"),
    nodeExpandVolume: rpc(node, "NodeExpandVolume"),
    nodeGetCapabilities: rpc(node, "NodeGetCapabilities"),
    nodeGetInfo: rpc(node, "NodeGetInfo"),
    close: () => identity.close(),
  };
}

/** Who a kubelet-shaped publish request is for. */
export interface PublishFor {
  pod: string;
  namespace?: string;
  targetPath: string;
  /** SecretProviderClass name (volume attribute `secretProviderClass`). */
  spc: string;
  podUid?: string;
}

/**
 * A NodePublishVolumeRequest shaped like kubelet's for an inline secrets-store volume (podInfoOnMount,
 * ephemeral, readonly), for the demo, tests and benchmarks.
 */
export function kubeletPublishRequest(p: PublishFor): NodePublishVolumeRequest {
  return {
    volume_id: `csi-${p.pod}`,
    target_path: p.targetPath,
    volume_capability: { mount: {}, access_mode: { mode: "SINGLE_NODE_READER_ONLY" } },
    readonly: true,
    volume_context: {
      secretProviderClass: p.spc,
      "csi.storage.k8s.io/pod.name": p.pod,
      "csi.storage.k8s.io/pod.namespace": p.namespace ?? "default",
      "csi.storage.k8s.io/pod.uid": p.podUid ?? `uid-${p.pod}`,
      "csi.storage.k8s.io/serviceAccount.name": "default",
      "csi.storage.k8s.io/ephemeral": "true",
    },
    secrets: {},
  };
}
