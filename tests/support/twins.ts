/**
 * In-memory twins of the publish use case's ports (lib/volume/ports.ts): a node whose target directories,
 * mounts and payloads live in maps, a scripted provider, an SPC map, a clock that moves only when told,
 * and metrics that remember what they were told. They need no root, no processes and no file system, so
 * that every branch of VolumeManager can be tested in milliseconds; the real parts have their own
 * integration tests.
 */
import { DriverError, GrpcStatus } from "../../lib/errors.ts";
import { type PayloadLimits, validatePayload } from "../../lib/files/payload.ts";
import type { Clock, Timer } from "../../lib/k8s/clock.ts";
import type { DriverMetrics } from "../../lib/metrics.ts";
import { ProviderCallError, ProviderErrorReason } from "../../lib/provider/client.ts";
import type {
  CallContext,
  Mounter,
  MountRequest,
  MountResponse,
  ObjectVersion,
  PayloadWriter,
  ProviderCaller,
  ProviderFile,
  SecretProviderClass,
  SpcSource,
  Target,
  WriteResult,
} from "../../lib/volume/ports.ts";

/**
 * A clock that moves only when told (the use case's `now`, lib/k8s/clock.ts's Clock): starts at `start`
 * ms; advance(ms) runs every timer set with after() that falls due, in order.
 */
export class FakeClock implements Clock {
  #now: number;
  #timers: { at: number; seq: number; fn: () => void }[] = [];
  #seq = 0;

  constructor(start = Date.UTC(2026, 0, 1)) {
    this.#now = start;
  }

  /** Milliseconds; an arrow, so it can be handed on as `now: clock.now`. */
  readonly now = (): number => this.#now;

  after(ms: number, fn: () => void): Timer {
    const timer = { at: this.#now + Math.max(0, ms), seq: this.#seq++, fn };
    this.#timers.push(timer);
    return { cancel: () => (this.#timers = this.#timers.filter((t) => t !== timer)) };
  }

  /** Delays of the pending timers from now, soonest first. */
  pending(): number[] {
    return this.#timers.map((t) => t.at - this.#now).sort((a, b) => a - b);
  }

  /** Moves time forward by `ms`, running due timers (and timers they set that fall due too). */
  advance(ms: number): void {
    const end = this.#now + ms;
    while (true) {
      const due = this.#timers.filter((t) => t.at <= end).sort((a, b) => a.at - b.at || a.seq - b.seq)[0];
      if (due === undefined) break;
      this.#timers = this.#timers.filter((t) => t !== due);
      this.#now = due.at;
      due.fn();
    }
    this.#now = end;
  }
}

/** One target directory of the memory node. */
interface MemoryDir {
  id: string;
  /** The root of the tmpfs mounted on it, or a foreign file system's description. */
  mount: { root: string } | { foreign: string } | null;
}

/** What a memory volume root holds. */
interface MemoryPayload {
  files: ProviderFile[];
  writtenAt: number;
  /** The group every entry was given (WriteOptions.group); undefined: root's. */
  group?: number;
}

/**
 * A node in memory: directories by path, mounts on them, payloads by volume root. `mounter` and `writer`
 * are its two ports; the fields are there for tests to arrange and inspect.
 */
export class MemoryNode {
  readonly dirs = new Map<string, MemoryDir>();
  /** Other spellings of a directory (a symlinked parent): alias path → real path. */
  readonly aliases = new Map<string, string>();
  readonly payloads = new Map<string, MemoryPayload>();
  /** Every mounter and writer call, as "op path-or-root". */
  readonly calls: string[] = [];
  /** Targets opened and not closed yet. */
  open = 0;
  /** Set to make the next call of that kind fail with the error. */
  readonly failNext: { mount?: Error; write?: Error; verify?: Error; unmount?: Error } = {};
  #roots = 0;
  #ids = 0;

  constructor(
    private readonly clock: FakeClock,
    private readonly limits: PayloadLimits = { maxTotalBytes: 1 << 20, maxFiles: 100 },
  ) {}

  /** Puts a foreign file system on `path` (created if missing). */
  mountForeign(path: string, description: string): void {
    this.#dir(path).mount = { foreign: description };
  }

  /** The payload the directory at `path` shows through its mount, if any. */
  shown(path: string): ProviderFile[] | undefined {
    const mount = this.dirs.get(path)?.mount;
    return mount && "root" in mount ? this.payloads.get(mount.root)?.files : undefined;
  }

  #dir(path: string): MemoryDir {
    let dir = this.dirs.get(path);
    if (!dir) {
      dir = { id: `dir-${++this.#ids}`, mount: null };
      this.dirs.set(path, dir);
    }
    return dir;
  }

  #take<K extends keyof MemoryNode["failNext"]>(kind: K): void {
    const err = this.failNext[kind];
    if (err) {
      delete this.failNext[kind];
      throw err;
    }
  }

  #entry(target: Target): MemoryDir {
    const dir = this.dirs.get(target.path);
    if (!dir) throw new DriverError(GrpcStatus.INTERNAL, `${target.path} vanished`);
    return dir;
  }

  #refuseForeign(target: Target, dir: MemoryDir): void {
    if (dir.mount && "foreign" in dir.mount) {
      throw new DriverError(
        GrpcStatus.FAILED_PRECONDITION,
        `target path ${target.path} has ${dir.mount.foreign} mounted on it, which this driver did not mount`,
      );
    }
  }

  readonly mounter: Mounter = {
    open: (path, { create }) => {
      const real = this.aliases.get(path) ?? path;
      this.calls.push(`open ${path}`);
      if (!this.dirs.has(real) && !create) return Promise.resolve(null);
      const dir = this.#dir(real);
      this.open++;
      return Promise.resolve({ path: real, id: dir.id });
    },
    mounted: (target) => {
      this.calls.push(`mounted ${target.path}`);
      const dir = this.#entry(target);
      this.#refuseForeign(target, dir);
      return Promise.resolve(dir.mount && "root" in dir.mount ? dir.mount.root : null);
    },
    mount: (target) => {
      this.calls.push(`mount ${target.path}`);
      this.#take("mount");
      const dir = this.#entry(target);
      if (dir.mount) throw new DriverError(GrpcStatus.FAILED_PRECONDITION, `${target.path} is a mount point`);
      const root = `memory-root-${++this.#roots}`;
      dir.mount = { root };
      return Promise.resolve(root);
    },
    verify: (target, root) => {
      this.calls.push(`verify ${target.path}`);
      this.#take("verify");
      const mount = this.dirs.get(target.path)?.mount;
      if (!mount || !("root" in mount) || mount.root !== root) {
        throw new DriverError(GrpcStatus.INTERNAL, `${target.path} no longer leads to ${root}`);
      }
      return Promise.resolve();
    },
    unmount: (target) => {
      this.calls.push(`unmount ${target.path}`);
      this.#take("unmount");
      const dir = this.#entry(target);
      this.#refuseForeign(target, dir);
      if (dir.mount && "root" in dir.mount) this.payloads.delete(dir.mount.root);
      dir.mount = null;
      return Promise.resolve();
    },
    remove: (target) => {
      this.calls.push(`remove ${target.path}`);
      this.dirs.delete(target.path);
      return Promise.resolve();
    },
    close: () => {
      this.open--;
    },
  };

  readonly writer: PayloadWriter = {
    write: (root, files, options = {}): Promise<WriteResult> => {
      this.calls.push(`write ${root}`);
      validatePayload(files, this.limits);
      this.#take("write");
      if (![...this.dirs.values()].some((d) => d.mount && "root" in d.mount && d.mount.root === root)) {
        throw new DriverError(GrpcStatus.INTERNAL, `${root} is not mounted`);
      }
      const sorted = [...files].sort((a, b) => (a.path < b.path ? -1 : 1));
      const before = this.payloads.get(root);
      const sameGroup = options.group === undefined || before?.group === options.group;
      if (before && sameGroup && JSON.stringify(before.files) === JSON.stringify(sorted)) {
        return Promise.resolve({ changed: false });
      }
      this.payloads.set(root, { files: sorted, writtenAt: this.clock.now(), group: options.group });
      return Promise.resolve({ changed: true });
    },
    read: (root) => Promise.resolve(this.payloads.get(root)?.files ?? null),
    writtenAt: (root) => Promise.resolve(this.payloads.get(root)?.writtenAt ?? null),
  };
}

/** What one provider does on Mount in {@link ScriptedProviders.script}. */
export interface ProviderAnswer {
  /** Files to return (UTF-8 strings or bytes); mode 0o644 unless given. */
  files?: { path: string; contents: string | Uint8Array; mode?: number }[];
  /** Versions to return; by default `{id: path, version: "v1"}` per file. */
  objectVersions?: ObjectVersion[];
  /** The provider answers with `error.code` set. */
  errorCode?: string;
  /** The call fails like this (a ProviderCallError, a DriverError). */
  error?: Error;
}

/**
 * The provider port ({@link ProviderCaller}) without sockets; records every call. A provider scripted with
 * script() fails as the real client (lib/provider/client.ts) fails: `error.code` is INTERNAL with the code
 * as `reason`, an answer without object versions INTERNAL with the gRPC reason, and a provider that is
 * neither scripted nor covered by `answer` UNAVAILABLE with the lookup reason
 * (tests/integration/twins_contract_test.ts holds the twin to that). `answer`, when set, answers every
 * other provider with whatever it returns or throws.
 */
export class ScriptedProviders implements ProviderCaller {
  readonly calls: { provider: string; request: MountRequest; ctx: CallContext }[] = [];
  readonly #scripts = new Map<string, ProviderAnswer | ((request: MountRequest) => ProviderAnswer)>();

  constructor(public answer?: (request: MountRequest) => MountResponse | Promise<MountResponse>) {}

  /** Scripts `provider`: a fixed answer, or one computed per request. */
  script(provider: string, answer: ProviderAnswer | ((request: MountRequest) => ProviderAnswer)): void {
    this.#scripts.set(provider, answer);
  }

  async mount(provider: string, request: MountRequest, ctx: CallContext): Promise<MountResponse> {
    this.calls.push({ provider, request: structuredClone(request), ctx: { ...ctx } });
    const who = `provider ${JSON.stringify(provider)}`;
    const forPod = ` for pod ${ctx.namespace}/${ctx.pod}`;
    const scripted = this.#scripts.get(provider);
    if (scripted === undefined) {
      if (this.answer) return await this.answer(request);
      throw new ProviderCallError(
        GrpcStatus.UNAVAILABLE,
        `cannot mount${forPod}: ${who} not found: no ${provider}.sock in the memory twin`,
        ProviderErrorReason.lookup,
      );
    }
    const answer = typeof scripted === "function" ? scripted(request) : scripted;
    if (answer.error) throw answer.error;
    if (answer.errorCode) {
      throw new ProviderCallError(
        GrpcStatus.UNKNOWN,
        `${who} failed Mount${forPod} with error code ${JSON.stringify(answer.errorCode)}`,
        answer.errorCode,
      );
    }
    const files = (answer.files ?? []).map(({ path, contents, mode }) =>
      typeof contents === "string" ? textFile(path, contents, mode) : { path, mode: mode ?? 0o644, contents }
    );
    const objectVersions = answer.objectVersions ?? files.map((f) => ({ id: f.path, version: "v1" }));
    if (objectVersions.length === 0) {
      throw new ProviderCallError(
        GrpcStatus.INTERNAL,
        `${who} answered Mount${forPod} without object versions`,
        ProviderErrorReason.grpc,
      );
    }
    return { objectVersions, files };
  }
}

/** SecretProviderClasses from a map keyed `namespace/name`. */
export class MemorySpcs implements SpcSource {
  readonly spcs = new Map<string, SecretProviderClass>();

  add(spc: Partial<SecretProviderClass> & { name: string; provider: string }): void {
    const full = { namespace: "default", parameters: {}, secretObjects: [], ...spc };
    this.spcs.set(`${full.namespace}/${full.name}`, full);
  }

  get(namespace: string, name: string): Promise<SecretProviderClass> {
    const spc = this.spcs.get(`${namespace}/${name}`);
    if (!spc) {
      return Promise.reject(
        new DriverError(GrpcStatus.NOT_FOUND, `SecretProviderClass ${namespace}/${name} not found`),
      );
    }
    return Promise.resolve(spc);
  }
}

/** Metrics that record each call as "name label,label". */
export class RecordingMetrics implements DriverMetrics {
  readonly events: string[] = [];
  mounted = 0;
  nodePublish(provider: string): void {
    this.events.push(`publish ${provider}`);
  }
  nodePublishError(provider: string, errorType: string): void {
    this.events.push(`publish_error ${provider},${errorType}`);
  }
  nodeUnpublish(): void {
    this.events.push("unpublish");
  }
  nodeUnpublishError(): void {
    this.events.push("unpublish_error");
  }
  rotation(provider: string, rotated: boolean): void {
    this.events.push(`rotation ${provider},${rotated}`);
  }
  rotationError(provider: string, errorType: string): void {
    this.events.push(`rotation_error ${provider},${errorType}`);
  }
  syncK8sSecret(provider: string, _count: number, _seconds: number): void {
    this.events.push(`sync ${provider}`);
  }
  syncK8sSecretError(provider: string, errorType: string): void {
    this.events.push(`sync_error ${provider},${errorType}`);
  }
  mountedVolumes(count: number): void {
    this.mounted = count;
  }
  providerHealth(): void {}
}

/** A payload file with UTF-8 contents. */
export function textFile(path: string, contents: string, mode = 0o644): ProviderFile {
  return { path, mode, contents: new TextEncoder().encode(contents) };
}
