/**
 * A real `v1alpha1.CSIDriverProvider` on a unix socket for tests, scripted per call: answer with given
 * files and versions, answer `error.code`, fail with a gRPC status, hang, delay. Every request is
 * recorded as received on the wire.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { DriverError, GrpcStatus } from "../../lib/errors.ts";
import { ProviderCallError } from "../../lib/provider/client.ts";
import { type ProviderServer, serveProvider } from "../../lib/provider/server.ts";
import type {
  WireFile,
  WireMountRequest,
  WireMountResponse,
  WireObjectVersion,
  WireVersionResponse,
} from "../../lib/provider/wire.ts";

/** What one Mount call does. Fields combine: `delayMs` first, then the failure or the answer. */
export interface MountBehaviour {
  /** Files to return; string contents are UTF-8 encoded; mode defaults to 0o644. */
  files?: { path: string; contents: string | Uint8Array; mode?: number }[];
  /** Object versions to return; by default one `{id: path, version: "v1"}` per file. */
  objectVersions?: WireObjectVersion[];
  /** Answer with `error.code` set (the provider-reported failure). */
  errorCode?: string;
  /** Fail the RPC itself with this gRPC status. */
  grpcError?: { code: GrpcStatus; message: string };
  /** Wait this long before answering (cut short when the caller cancels). */
  delayMs?: number;
  /** Never answer: the call ends only when the caller gives up or the provider closes. */
  hang?: boolean;
}

const DEFAULT_BEHAVIOUR: MountBehaviour = { files: [{ path: "secret", contents: "s3cr3t" }] };

/** A scripted provider listening on `<dir>/<name>.sock`. */
export class TestProvider {
  /** Every MountRequest received, in order, exactly as decoded from the wire. */
  readonly mountRequests: WireMountRequest[] = [];
  /** Every VersionRequest.version received. */
  readonly versionRequests: string[] = [];
  /** What Mount does when nothing is queued. */
  behaviour: MountBehaviour = DEFAULT_BEHAVIOUR;
  /** What Version answers. */
  versionResponse: WireVersionResponse = {
    version: "v1alpha1",
    runtime_name: "test-provider",
    runtime_version: "0.0.1",
  };
  readonly #queue: MountBehaviour[] = [];
  #server?: ProviderServer;

  private constructor() {}

  get socketPath(): string {
    return this.#server!.socketPath;
  }

  /** Starts a provider named `name` in `dir`. */
  static async start(dir: string, name = "test"): Promise<TestProvider> {
    const provider = new TestProvider();
    provider.#server = await serveProvider(join(dir, `${name}.sock`), {
      version: (request) => provider.#version(request.version),
      mount: (request, signal) => provider.#mount(request, signal),
    });
    return provider;
  }

  /** Makes the next calls behave as given, one behaviour per call, before falling back to `behaviour`. */
  queue(...behaviours: MountBehaviour[]): this {
    this.#queue.push(...behaviours);
    return this;
  }

  /** Makes the next `n` calls fail with UNAVAILABLE. */
  unavailableFor(n: number): this {
    const unavailable = {
      grpcError: { code: GrpcStatus.UNAVAILABLE, message: "test provider is warming up" },
    };
    return this.queue(...Array.from({ length: n }, () => unavailable));
  }

  /** Stops serving; calls in flight end with CANCELLED. */
  close(): Promise<void> {
    return this.#server!.close();
  }

  #version(version: string): Promise<WireVersionResponse> {
    this.versionRequests.push(version);
    return Promise.resolve(this.versionResponse);
  }

  async #mount(request: WireMountRequest, signal: AbortSignal): Promise<WireMountResponse> {
    this.mountRequests.push(request);
    const behaviour = this.#queue.shift() ?? this.behaviour;
    if (behaviour.delayMs) await abortableDelay(behaviour.delayMs, signal);
    if (behaviour.hang) await abortableDelay(Infinity, signal);
    if (behaviour.grpcError) throw new DriverError(behaviour.grpcError.code, behaviour.grpcError.message);
    if (behaviour.errorCode) return { error: { code: behaviour.errorCode } };
    const files: WireFile[] = (behaviour.files ?? []).map(({ path, contents, mode }) => ({
      path,
      mode: mode ?? 0o644,
      contents: typeof contents === "string" ? new TextEncoder().encode(contents) : contents,
    }));
    const objectVersions = behaviour.objectVersions ?? files.map(({ path }) => ({ id: path, version: "v1" }));
    return { object_version: objectVersions, files };
  }
}

/** Resolves after `ms` (never for Infinity); rejects with the abort reason once `signal` aborts. */
function abortableDelay(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal.reason);
    };
    const timer = Number.isFinite(ms)
      ? setTimeout(() => {
        signal.removeEventListener("abort", onAbort);
        resolve();
      }, ms)
      : undefined;
    if (signal.aborted) onAbort();
    else signal.addEventListener("abort", onAbort, { once: true });
  });
}

/** The ProviderCallError `promise` fails with; fails the test when it succeeds or fails otherwise. */
export async function providerCallError(promise: Promise<unknown>): Promise<ProviderCallError> {
  try {
    await promise;
  } catch (err) {
    assert.ok(err instanceof ProviderCallError, `expected a ProviderCallError, got ${err}`);
    return err;
  }
  assert.fail("expected the provider call to fail");
}
