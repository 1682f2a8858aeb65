/**
 * The gRPC client for provider plugins (`v1alpha1.CSIDriverProvider` on `<dir>/<provider>.sock`).
 *
 * One channel per provider, reused across calls and replaced when the provider's socket moves or the
 * channel has failed. Mount retries UNAVAILABLE with upstream's backoff inside the caller's deadline;
 * every failure is a ProviderCallError that names the provider and the pod and carries the reason that
 * upstream reports in its publish error metric.
 */
import * as grpc from "@grpc/grpc-js";
import { DEFAULT_MAX_RECV_BYTES } from "../config.ts";
import { DriverError, GrpcStatus, grpcStatusName, toDriverError } from "../errors.ts";
import { guardClientSessions } from "../http2-goaway-guard.ts";
import { sleep } from "../sleep.ts";
import type { Logger } from "../log.ts";
import { invalidUtf8Field, providerService } from "../proto.ts";
import type { CallContext, MountRequest, MountResponse, ProviderCaller } from "../volume/ports.ts";
import { findProviderSocket } from "./discovery.ts";
import {
  PROVIDER_API_VERSION,
  type WireMountRequest,
  type WireMountResponse,
  type WireVersionRequest,
  type WireVersionResponse,
} from "./wire.ts";

/** Backoff for UNAVAILABLE; `attempts` counts the first call. */
export interface RetryPolicy {
  attempts: number;
  initialMs: number;
  maxMs: number;
  /** Growth of the backoff per attempt; upstream's service config uses 1.1. */
  multiplier?: number;
}

/** Upstream's retry policy (its gRPC service config): 3 attempts, 1s initial, 10s max, ×1.1. */
export const DEFAULT_RETRY: Required<RetryPolicy> = {
  attempts: 3,
  initialMs: 1000,
  maxMs: 10_000,
  multiplier: 1.1,
};

/** grpc-js's deadline timer may fire a little before Date.now() reaches the deadline. */
const DEADLINE_SLACK_MS = 20;

/** Publish error reasons as upstream reports them (pkg/errors), besides a provider's own error codes. */
export const ProviderErrorReason = {
  lookup: "FailedToLookupProviderGRPCClient",
  grpc: "GRPCProviderError",
} as const;

/** A failed provider call; `reason` is the `error_type` upstream's publish error metric reports. */
export class ProviderCallError extends DriverError {
  constructor(code: GrpcStatus, message: string, readonly reason: string, options?: ErrorOptions) {
    super(code, message, options);
    this.name = "ProviderCallError";
  }
}

/** What the provider reports about itself (VersionResponse). */
export interface ProviderVersion {
  version: string;
  runtimeName: string;
  runtimeVersion: string;
}

/** How ProviderClient finds and talks to providers. */
export interface ProviderClientOptions {
  /** Directories searched for `<provider>.sock`, in order. */
  dirs: string[];
  /** Largest response accepted (`--max-call-recv-msg-size`); 4 MiB by default. */
  maxRecvBytes?: number;
  /** Sent in the user agent so provider logs show which driver called. */
  driverVersion: string;
  retry?: RetryPolicy;
  log: Logger;
}

type Unary<Req, Res> = (
  request: Req,
  options: grpc.CallOptions,
  callback: (err: grpc.ServiceError | null, response?: Res) => void,
) => grpc.ClientUnaryCall;

/** Request and response of each provider RPC. */
interface Methods {
  Mount: [WireMountRequest, WireMountResponse];
  Version: [WireVersionRequest, WireVersionResponse];
}

type ProviderStub = grpc.Client & { [M in keyof Methods]: Unary<Methods[M][0], Methods[M][1]> };

interface Connection {
  socketPath: string;
  stub: ProviderStub;
}

/** Who a call is for, as error messages say it. */
interface Caller {
  provider: string;
  /** " for pod ns/name", or "" when no pod is involved. */
  forPod: string;
}

/** Calls provider plugins over gRPC, keeping one channel per provider. Call close() when done. */
export class ProviderClient implements ProviderCaller {
  readonly #connections = new Map<string, Connection>();
  readonly #closing = new AbortController();
  readonly #maxRecvBytes: number;
  readonly #retry: Required<RetryPolicy>;

  constructor(private readonly options: ProviderClientOptions) {
    guardClientSessions();
    this.#maxRecvBytes = options.maxRecvBytes ?? DEFAULT_MAX_RECV_BYTES;
    this.#retry = { ...DEFAULT_RETRY, ...options.retry };
  }

  /** Calls the provider's Mount; the whole call, retries included, ends within `ctx.timeoutMs`. */
  async mount(provider: string, request: MountRequest, ctx: CallContext): Promise<MountResponse> {
    const caller = { provider, forPod: ` for pod ${ctx.namespace}/${ctx.pod}` };
    const deadline = Date.now() + ctx.timeoutMs;
    const wire: WireMountRequest = {
      attributes: request.attributes,
      secrets: request.secrets,
      target_path: request.targetPath,
      permission: request.permission,
      current_object_version: request.currentObjectVersion.map(({ id, version }) => ({ id, version })),
    };
    const log = this.options.log.with({ provider, pod: `${ctx.namespace}/${ctx.pod}` });
    for (let attempt = 1;; attempt++) {
      try {
        const response = await this.#call(caller, "Mount", wire, deadline, ctx.timeoutMs);
        return toMountResponse(caller, response);
      } catch (err) {
        if (!(err instanceof ProviderCallError) || err.code !== GrpcStatus.UNAVAILABLE) throw err;
        if (err.reason !== ProviderErrorReason.grpc || attempt >= this.#retry.attempts) throw err;
        const delay = this.#backoffMs(attempt);
        if (Date.now() + delay >= deadline) throw err;
        log.info(
          "provider unavailable, retrying Mount",
          { attempt, delayMs: Math.round(delay), error: err },
          2,
        );
        await sleep(delay, this.#closing.signal);
      }
    }
  }

  /** Calls the provider's Version (used by health checks). */
  async version(provider: string, timeoutMs: number): Promise<ProviderVersion> {
    const request: WireVersionRequest = { version: PROVIDER_API_VERSION };
    const caller = { provider, forPod: "" };
    const response = await this.#call(caller, "Version", request, Date.now() + timeoutMs, timeoutMs);
    return {
      version: response.version,
      runtimeName: response.runtime_name,
      runtimeVersion: response.runtime_version,
    };
  }

  /** Providers with an open channel (the ones a health check should ask). */
  connectedProviders(): string[] {
    return [...this.#connections.keys()];
  }

  /** Closes every provider channel; calls made afterwards fail with CANCELLED. */
  close(): void {
    this.#closing.abort();
    for (const connection of this.#connections.values()) connection.stub.close();
    this.#connections.clear();
  }

  async #call<M extends keyof Methods>(
    caller: Caller,
    method: M,
    request: Methods[M][0],
    deadline: number,
    timeoutMs: number,
  ): Promise<Methods[M][1]> {
    const stub = await this.#connect(caller);
    if (Date.now() >= deadline) throw deadlineError(caller, method, timeoutMs);
    const rpc = (stub[method] as Unary<Methods[M][0], Methods[M][1]>).bind(stub);
    let response: Methods[M][1];
    try {
      response = await new Promise<Methods[M][1]>((resolve, reject) =>
        rpc(request, { deadline }, (err, response) => err ? reject(err) : resolve(response!))
      );
    } catch (err) {
      const failure = err as grpc.ServiceError;
      throw this.#callError(caller, method, failure, deadline, timeoutMs, textBytes(request));
    }
    const invalid = invalidUtf8Field(response);
    if (invalid !== undefined) {
      // Decoded lossily, a file name would silently be another one (lib/proto.ts).
      throw new ProviderCallError(
        GrpcStatus.INTERNAL,
        `provider ${
          JSON.stringify(caller.provider)
        } answered ${method}${caller.forPod} with invalid UTF-8 in ` +
          `${method}Response.${invalid}`,
        ProviderErrorReason.grpc,
      );
    }
    return response;
  }

  /** The provider's cached channel, replaced when its socket moved or the channel failed. */
  async #connect(caller: Caller): Promise<ProviderStub> {
    const { provider } = caller;
    if (this.#closing.signal.aborted) throw closedError(caller);
    let socketPath: string;
    try {
      socketPath = await findProviderSocket(provider, this.options.dirs);
    } catch (err) {
      // The provider is gone: a channel to its old socket would only hold a reconnect loop open.
      this.#drop(provider);
      const cause = toDriverError(err);
      const where = caller.forPod ? `cannot mount${caller.forPod}: ` : "";
      throw new ProviderCallError(cause.code, where + cause.message, ProviderErrorReason.lookup, { cause });
    }
    if (this.#closing.signal.aborted) throw closedError(caller);
    const cached = this.#connections.get(provider);
    if (cached && cached.socketPath === socketPath && usable(cached.stub)) return cached.stub;
    this.#drop(provider);
    const Ctor = providerService();
    const stub = new Ctor(`unix:${socketPath}`, grpc.credentials.createInsecure(), {
      "grpc.max_receive_message_length": this.#maxRecvBytes,
      "grpc.primary_user_agent": `secrets-store-csi/${this.options.driverVersion}`,
    }) as unknown as ProviderStub;
    this.#connections.set(provider, { socketPath, stub });
    this.options.log.info("connected to provider", { provider, socketPath }, 3);
    return stub;
  }

  #drop(provider: string): void {
    this.#connections.get(provider)?.stub.close();
    this.#connections.delete(provider);
  }

  #backoffMs(attempt: number): number {
    const { initialMs, maxMs, multiplier } = this.#retry;
    const ceiling = Math.min(initialMs * multiplier ** (attempt - 1), maxMs);
    // gRPC's retry backoff is jittered over [0, ceiling) so that many pods retrying don't move in step.
    return Math.random() * ceiling;
  }

  #callError(
    caller: Caller,
    method: string,
    err: grpc.ServiceError,
    deadline: number,
    timeoutMs: number,
    requestBytes: number,
  ): ProviderCallError {
    const { provider, forPod } = caller;
    const who = `provider ${JSON.stringify(provider)}`;
    const grpcReason = ProviderErrorReason.grpc;
    // Only our own deadline "did not answer within": a provider may answer DEADLINE_EXCEEDED at once.
    if (err.code === GrpcStatus.DEADLINE_EXCEEDED && Date.now() >= deadline - DEADLINE_SLACK_MS) {
      return deadlineError(caller, method, timeoutMs, err);
    }
    const tooLarge = /Received message larger than max \((\d+) vs\.? (\d+)\)/.exec(err.details ?? "");
    if (err.code === GrpcStatus.RESOURCE_EXHAUSTED && tooLarge && requestBytes > Number(tooLarge[2])) {
      // Our request cannot have fit under the limit named: the provider refused it, it did not answer.
      const message = `${who} refused the ${method} request${forPod}: it is ${tooLarge[1]} bytes (volume ` +
        `attributes and secrets), over the provider's ${tooLarge[2]}-byte receive limit`;
      return new ProviderCallError(GrpcStatus.RESOURCE_EXHAUSTED, message, grpcReason, { cause: err });
    }
    if (err.code === GrpcStatus.RESOURCE_EXHAUSTED && tooLarge) {
      const limit = `the ${this.#maxRecvBytes}-byte limit; raise --max-call-recv-msg-size to accept it`;
      const message = `${who} answered ${method}${forPod} with a ${tooLarge[1]}-byte message, over ${limit}`;
      return new ProviderCallError(GrpcStatus.RESOURCE_EXHAUSTED, message, grpcReason, { cause: err });
    }
    if (err.code === GrpcStatus.CANCELLED && this.#closing.signal.aborted) return closedError(caller);
    const codeName = grpcStatusName(err.code);
    // grpc-js appends an empty "Resolution note: " to connection failures; it only confuses readers.
    const details = (err.details || err.message).replace(/\s*Resolution note:\s*$/, "");
    return new ProviderCallError(
      err.code ?? GrpcStatus.UNKNOWN,
      `${who} failed ${method}${forPod}: ${details} (${codeName})`,
      grpcReason,
      { cause: err },
    );
  }
}

function usable(stub: ProviderStub): boolean {
  const state = stub.getChannel().getConnectivityState(false);
  return state !== grpc.connectivityState.TRANSIENT_FAILURE && state !== grpc.connectivityState.SHUTDOWN;
}

function toMountResponse(caller: Caller, response: WireMountResponse): MountResponse {
  const who = `provider ${JSON.stringify(caller.provider)}`;
  const code = response.error?.code ?? "";
  if (code !== "") {
    // The provider's error code is its failure reason (e.g. a cloud API's error name): report it as such,
    // with UNKNOWN (an error from another system), as upstream does.
    throw new ProviderCallError(
      GrpcStatus.UNKNOWN,
      `${who} failed Mount${caller.forPod} with error code ${JSON.stringify(code)}`,
      code,
    );
  }
  const objectVersions = response.object_version ?? [];
  if (objectVersions.length === 0) {
    // Upstream rejects a response without object versions: without them rotation cannot track anything.
    throw new ProviderCallError(
      GrpcStatus.INTERNAL,
      `${who} answered Mount${caller.forPod} without object versions`,
      ProviderErrorReason.grpc,
    );
  }
  return {
    objectVersions: objectVersions.map(({ id, version }) => ({ id, version })),
    files: (response.files ?? []).map(({ path, mode, contents }) => ({
      path,
      mode,
      // grpc-js decodes bytes as a Buffer; hand out a plain view of the same memory.
      contents: new Uint8Array(contents.buffer, contents.byteOffset, contents.byteLength),
    })),
  };
}

function deadlineError(
  caller: Caller,
  method: string,
  timeoutMs: number,
  cause?: unknown,
): ProviderCallError {
  const message =
    `provider ${JSON.stringify(caller.provider)} did not answer ${method}${caller.forPod} within ` +
    formatDuration(timeoutMs);
  return new ProviderCallError(GrpcStatus.DEADLINE_EXCEEDED, message, ProviderErrorReason.grpc, { cause });
}

function closedError(caller: Caller): ProviderCallError {
  return new ProviderCallError(
    GrpcStatus.CANCELLED,
    `the provider client is closed: no call to provider ${JSON.stringify(caller.provider)}${caller.forPod}`,
    ProviderErrorReason.grpc,
  );
}

/** "500ms", "5s", "1.5s", "2m". */
function formatDuration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)}ms`;
  if (ms < 60_000 || ms % 60_000 !== 0) return `${Number((ms / 1000).toFixed(1))}s`;
  return `${ms / 60_000}m`;
}

const utf8 = new TextEncoder();

/** UTF-8 bytes of every string in `request`: a lower bound of its encoded size. */
function textBytes(request: object): number {
  let bytes = 0;
  for (const value of Object.values(request)) {
    if (typeof value === "string") bytes += utf8.encode(value).length;
  }
  return bytes;
}
