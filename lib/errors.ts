/**
 * Errors that cross a gRPC boundary. Every failure that reaches kubelet or a provider caller is a
 * DriverError: a gRPC status code plus one clear sentence.
 */
/**
 * gRPC status codes (fixed by the gRPC spec), defined here rather than imported from @grpc/grpc-js so
 * that commands which never open a socket (`version`, `--help`) do not load the gRPC library.
 */
export const GrpcStatus = {
  OK: 0,
  CANCELLED: 1,
  UNKNOWN: 2,
  INVALID_ARGUMENT: 3,
  DEADLINE_EXCEEDED: 4,
  NOT_FOUND: 5,
  ALREADY_EXISTS: 6,
  PERMISSION_DENIED: 7,
  RESOURCE_EXHAUSTED: 8,
  FAILED_PRECONDITION: 9,
  ABORTED: 10,
  OUT_OF_RANGE: 11,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
  UNAVAILABLE: 14,
  DATA_LOSS: 15,
  UNAUTHENTICATED: 16,
} as const;

/** One of the gRPC status codes. */
export type GrpcStatus = typeof GrpcStatus[keyof typeof GrpcStatus];

const status = GrpcStatus;

const STATUS_NAMES = new Map<number, string>(Object.entries(GrpcStatus).map(([name, code]) => [code, name]));

/** The name of a gRPC status code ("INTERNAL"), or the number for an unknown code. */
export function grpcStatusName(code: number): string {
  return STATUS_NAMES.get(code) ?? String(code);
}

/** A failure with the gRPC status code it must be reported with. */
export class DriverError extends Error {
  constructor(readonly code: GrpcStatus, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "DriverError";
  }
}

/**
 * A provider payload the driver refuses to write (lib/files/payload.ts). The provider broke the contract,
 * not the caller, so it reaches kubelet as INTERNAL.
 */
export class PayloadError extends DriverError {
  constructor(message: string) {
    super(GrpcStatus.INTERNAL, message);
    this.name = "PayloadError";
  }
}

export const invalidArgument = (msg: string): DriverError => new DriverError(status.INVALID_ARGUMENT, msg);
export const notFound = (msg: string): DriverError => new DriverError(status.NOT_FOUND, msg);
export const internal = (msg: string, cause?: unknown): DriverError =>
  new DriverError(status.INTERNAL, msg, { cause });

/** The message of any thrown value, for wrapping. */
export function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** Converts anything thrown into a DriverError, keeping a DriverError's own code. */
export function toDriverError(err: unknown, fallback: GrpcStatus = GrpcStatus.INTERNAL): DriverError {
  if (err instanceof DriverError) return err;
  return new DriverError(fallback, messageOf(err), { cause: err });
}
