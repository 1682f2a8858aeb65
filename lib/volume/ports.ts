/**
 * The seams of the publish use case: each collaborator is a narrow interface so that tests can hand in
 * real parts (tmpfs, gRPC provider, API server) or stand-ins.
 */

/** One file as a provider returns it (MountResponse.files). */
export interface ProviderFile {
  path: string;
  mode: number;
  contents: Uint8Array;
}

/** MountResponse.object_version / MountRequest.current_object_version. */
export interface ObjectVersion {
  id: string;
  version: string;
}

/** What the driver sends in MountRequest. */
export interface MountRequest {
  attributes: string;
  secrets: string;
  targetPath: string;
  permission: string;
  currentObjectVersion: ObjectVersion[];
}

/** What the driver keeps from MountResponse (error.code is turned into a thrown error by the client). */
export interface MountResponse {
  objectVersions: ObjectVersion[];
  files: ProviderFile[];
}

/** Who the mount is for, used in error messages and deadlines. */
export interface CallContext {
  pod: string;
  namespace: string;
  /** Deadline for the whole provider call in milliseconds. */
  timeoutMs: number;
}

/** Talks to provider plugins (lib/provider/client.ts). */
export interface ProviderCaller {
  mount(provider: string, request: MountRequest, ctx: CallContext): Promise<MountResponse>;
}

/** Mounts and unmounts the per-volume tmpfs (lib/mount/tmpfs.ts). */
export interface Mounter {
  /** Mounts a fresh tmpfs on an existing directory. */
  mount(target: string): Promise<void>;
  /** Unmounts; success when `target` is not a mount point or does not exist. */
  unmount(target: string): Promise<void>;
  /** True when `target` is itself a mount point. */
  isMountPoint(target: string): Promise<boolean>;
}

/** Result of writing a payload into a target directory. */
export interface WriteResult {
  /** False when the payload was byte-for-byte what was there: nothing was written. */
  changed: boolean;
}

/** Writes validated files into a target dir with kubelet AtomicWriter semantics (lib/files/). */
export interface PayloadWriter {
  write(targetDir: string, files: ProviderFile[]): Promise<WriteResult>;
  /** The payload the target currently shows (sorted by path); null when nothing was written there. */
  read(targetDir: string): Promise<ProviderFile[] | null>;
}

/** A SecretProviderClass, reduced to what the driver uses. */
export interface SecretProviderClass {
  name: string;
  namespace: string;
  provider: string;
  parameters: Record<string, string>;
  secretObjects: unknown[];
}

/** Looks up SecretProviderClasses (standalone files or the Kubernetes API). */
export interface SpcSource {
  get(namespace: string, name: string): Promise<SecretProviderClass>;
}

/** NodePublishVolume after the CSI layer's argument checks. */
export interface PublishRequest {
  volumeId: string;
  targetPath: string;
  readonly: boolean;
  /** CSI volume_context: SPC name, pod info, tokens, ephemeral flag. */
  volumeContext: Record<string, string>;
  /** CSI secrets: the nodePublishSecretRef data. */
  secrets: Record<string, string>;
}

/** The publish / unpublish use case as the CSI Node service sees it (lib/volume/). */
export interface VolumeService {
  publish(request: PublishRequest): Promise<void>;
  unpublish(volumeId: string, targetPath: string): Promise<void>;
}
