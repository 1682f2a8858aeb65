/**
 * The publish / unpublish use case (DESIGN.md §1): look up the SecretProviderClass, mount a fresh tmpfs,
 * ask the provider for the files, write them atomically. The CSI layer only validates and translates.
 */
import { DriverError, GrpcStatus, invalidArgument, messageOf, toDriverError } from "../errors.ts";
import type { Logger } from "../log.ts";
import { PayloadError } from "../files/payload.ts";
import { CONTEXT, FILE_PERMISSION, providerAttributes, providerSecrets } from "./attributes.ts";
import { KeyedLock } from "./keyed-lock.ts";
import { checkTargetPath } from "./target-path.ts";
import { removeVolume } from "./unpublish.ts";
import type {
  Mounter,
  ObjectVersion,
  PayloadWriter,
  ProviderCaller,
  ProviderFile,
  PublishRequest,
  SecretProviderClass,
  SpcSource,
  VolumeService,
} from "./ports.ts";

/** What a successful publish produced, for the status and sync steps that follow it. */
export interface Published {
  request: PublishRequest;
  targetPath: string;
  spc: SecretProviderClass;
  objectVersions: ObjectVersion[];
}

/** Collaborators of the use case. */
export interface VolumeDeps {
  spcs: SpcSource;
  providers: ProviderCaller;
  mounter: Mounter;
  writer: PayloadWriter;
  log: Logger;
  /** Deadline of one provider call. */
  providerTimeoutMs: number;
  /** Called after the files are in place (SPCPS, metrics); a failure fails the publish like upstream. */
  afterPublish?: (published: Published) => Promise<void>;
}

/** Upstream creates missing target directories with this mode. */
const TARGET_DIR_MODE = 0o750;

/** Publishes and unpublishes secrets volumes; calls for one target path are serialized. */
export class VolumeManager implements VolumeService {
  readonly #lock = new KeyedLock();

  constructor(private readonly deps: VolumeDeps) {}

  publish(request: PublishRequest): Promise<void> {
    const target = checkTargetPath(request.targetPath);
    return this.#lock.run(target, () => this.#publish(request, target));
  }

  unpublish(_volumeId: string, targetPath: string): Promise<void> {
    const target = checkTargetPath(targetPath);
    return this.#lock.run(target, () => this.#unpublish(target));
  }

  async #publish(request: PublishRequest, target: string): Promise<void> {
    const ctx = request.volumeContext;
    const pod = { pod: ctx[CONTEXT.podName] ?? "", namespace: ctx[CONTEXT.podNamespace] ?? "" };
    const log = this.deps.log.with({ pod: `${pod.namespace}/${pod.pod}`, targetPath: target });
    const started = performance.now();

    if (await this.#preparedMountPoint(target, log)) {
      log.info("target path is already mounted", {}, 2);
      return;
    }
    const spcName = ctx[CONTEXT.spc] ?? "";
    if (spcName === "") throw invalidArgument("secretProviderClass is not set in the volume attributes");
    const spc = await this.deps.spcs.get(pod.namespace, spcName);

    await this.deps.mounter.mount(target);
    try {
      const response = await this.deps.providers.mount(spc.provider, {
        attributes: providerAttributes(spc, request),
        secrets: providerSecrets(request),
        targetPath: target,
        permission: FILE_PERMISSION,
        currentObjectVersion: [],
      }, { ...pod, timeoutMs: this.deps.providerTimeoutMs });
      await this.#write(target, response.files, spc.provider);
      await this.deps.afterPublish?.({
        request,
        targetPath: target,
        spc,
        objectVersions: response.objectVersions,
      });
    } catch (err) {
      // Undo the mount so that kubelet's retry starts from scratch (upstream does the same).
      log.info("unmounting target path as node publish volume failed", { error: messageOf(err) });
      await this.deps.mounter.unmount(target).catch((unmountErr) =>
        log.error("failed to unmount after a failed publish", { error: messageOf(unmountErr) })
      );
      throw toDriverError(err);
    }
    log.info("node publish volume complete", {
      provider: spc.provider,
      durationMs: Math.round(performance.now() - started),
    });
  }

  /**
   * Creates the target directory when missing and tells whether it is already a healthy mount point. A
   * mount point whose directory cannot be read (a stale tmpfs) is unmounted so it is mounted afresh.
   */
  async #preparedMountPoint(target: string, log: Logger): Promise<boolean> {
    let info: Deno.FileInfo;
    try {
      info = await Deno.lstat(target);
    } catch (err) {
      if (!(err instanceof Deno.errors.NotFound)) throw toDriverError(err);
      await Deno.mkdir(target, { recursive: true, mode: TARGET_DIR_MODE });
      return false;
    }
    if (info.isSymlink) {
      throw invalidArgument(`target path ${target} is a symlink; the driver does not follow it`);
    }
    if (!info.isDirectory) throw invalidArgument(`target path ${target} exists and is not a directory`);
    if (!await this.deps.mounter.isMountPoint(target)) return false;
    try {
      for await (const _ of Deno.readDir(target)) break;
      return true;
    } catch (err) {
      log.warn("target path is a mount point that cannot be read; remounting", { error: messageOf(err) });
      await this.deps.mounter.unmount(target);
      return false;
    }
  }

  async #write(target: string, files: ProviderFile[], provider: string): Promise<void> {
    try {
      await this.deps.writer.write(target, files);
    } catch (err) {
      if (err instanceof PayloadError) {
        throw new DriverError(
          GrpcStatus.INTERNAL,
          `provider "${provider}" returned an invalid file: ${err.message}`,
        );
      }
      throw err;
    }
  }

  async #unpublish(target: string): Promise<void> {
    await removeVolume(target, this.deps.mounter);
    this.deps.log.info("node unpublish volume complete", { targetPath: target });
  }
}
