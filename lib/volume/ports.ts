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

/**
 * A target directory the mounter has opened. The real one holds it by file descriptor (its parent
 * directory and its name), so that renaming or replacing a component of the path after the checks cannot
 * redirect a mount, a write or an unmount. Released with {@link Mounter.close}.
 */
export interface Target {
  /** The clean absolute path kubelet named. */
  readonly path: string;
  /**
   * The identity of the directory entry (the parent's device and inode, and the name): the same for every
   * spelling of one directory, so it is the key that serializes calls for one volume.
   */
  readonly id: string;
}

/**
 * Mounts and unmounts the per-volume tmpfs (lib/mount/tmpfs.ts). A volume's root is handed out as a
 * directory path that always names that tmpfs's root, whatever happens to the target path meanwhile
 * (the real mounter's is `/proc/self/fd/<n>`); the writer works below it.
 */
export interface Mounter {
  /**
   * Opens the target directory without following a symbolic link in any component that could be raced
   * (every one below kubelet's pods directory), refusing a path outside the allowed area; creates missing
   * directories when `create`. Null when the path does not exist and `create` is false.
   */
  open(path: string, options: { create: boolean }): Promise<Target | null>;
  /**
   * The root of the driver's tmpfs mounted on `target`, or null when nothing is mounted there. Throws
   * FAILED_PRECONDITION, naming what is mounted, when the mount is not a tmpfs (not the driver's).
   */
  mounted(target: Target): Promise<string | null>;
  /** Mounts a fresh tmpfs on `target`, which must not be a mount point, and returns its root. */
  mount(target: Target): Promise<string>;
  /** Throws unless `target.path`, resolved now as kubelet will resolve it, is the tmpfs whose root is `root`. */
  verify(target: Target, root: string): Promise<void>;
  /**
   * Unmounts the driver's tmpfs from `target`; nothing when nothing is mounted; refuses (like `mounted`)
   * a mount that is not the driver's. A tmpfs this target mounted or found is detached by descriptor.
   */
  unmount(target: Target): Promise<void>;
  /** Removes the (unmounted, empty) target directory; nothing when it is already gone. */
  remove(target: Target): Promise<void>;
  /** Releases what `open` and the roots handed out for `target` hold. */
  close(target: Target): void;
}

/** Result of writing a payload into a target directory. */
export interface WriteResult {
  /** False when the payload was byte-for-byte what was there: nothing was written. */
  changed: boolean;
}

/** How a payload is written. */
export interface WriteOptions {
  /**
   * The pod's fsGroup (CSI `volume_mount_group`): every file and directory gets this group and the root
   * mode 0750; file modes stay the provider's. Without it, everything stays root's and the root 0755.
   */
  group?: number;
}

/**
 * Writes validated files into a volume root with kubelet AtomicWriter semantics (lib/files/). A payload it
 * accepts always fits the volume, a rotation (old and new side by side) included.
 */
export interface PayloadWriter {
  /**
   * Validates `files` and makes them the content of `root`. An invalid payload throws a PayloadError
   * (lib/errors.ts); the previous payload stays visible and complete whatever fails.
   */
  write(root: string, files: ProviderFile[], options?: WriteOptions): Promise<WriteResult>;
  /** The payload `root` currently shows (sorted by path); null when nothing was written there. */
  read(root: string): Promise<ProviderFile[] | null>;
  /** When the payload `root` shows was written (ms since the epoch); null when it holds no complete one. */
  writtenAt(root: string): Promise<number | null>;
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
  /** CSI `volume_mount_group`, checked: the pod's fsGroup, when kubelet delegates it to the driver. */
  mountGroup?: number;
}

/** The pod a volume belongs to, from kubelet's volume context. */
export interface PodRef {
  name: string;
  namespace: string;
  uid: string;
}

/** What a successful publish or rotation produced, for the status and sync steps that follow it. */
export interface Published {
  pod: PodRef;
  targetPath: string;
  spc: SecretProviderClass;
  objectVersions: ObjectVersion[];
  /** False for a rotation that found identical content. */
  changed: boolean;
}

/** A rotation that failed: the pod keeps its older content. */
export interface RotationFailure {
  pod: PodRef;
  targetPath: string;
  /** The SecretProviderClass name from the volume context. */
  spcName: string;
  /** One sentence: why it failed. */
  message: string;
}

/** Rotation on republish (`--enable-secret-rotation`, `--rotation-poll-interval`). */
export interface RotationConfig {
  enabled: boolean;
  /** Least time between two provider calls for one volume. */
  pollIntervalMs: number;
}

/**
 * The volumes the use case has published, by target path: what the Secret sync (lib/k8s/secret-sync.ts)
 * may read. The path in a SecretProviderClassPodStatus is an API object anyone allowed to write those can
 * set; only this answer says a path is one of the driver's volumes, and for which pod.
 */
export interface MountedVolumes {
  /** The uid of the pod the volume at `targetPath` was published for; undefined when there is none. */
  podUid(targetPath: string): string | undefined;
}

/** The publish / unpublish use case as the CSI Node service sees it (lib/volume/). */
export interface VolumeService {
  publish(request: PublishRequest): Promise<void>;
  unpublish(volumeId: string, targetPath: string): Promise<void>;
}
