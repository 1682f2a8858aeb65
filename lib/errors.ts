/**
 * Errors that cross a gRPC boundary. Every failure that reaches kubelet or a provider caller is a
 * DriverError: a gRPC status code plus one clear sentence.
 */
import { status } from "@grpc/grpc-js";

export { status as GrpcStatus };

/** A failure with the gRPC status code it must be reported with. */
export class DriverError extends Error {
  constructor(readonly code: status, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "DriverError";
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
export function toDriverError(err: unknown, fallback: status = status.INTERNAL): DriverError {
  if (err instanceof DriverError) return err;
  return new DriverError(fallback, messageOf(err), { cause: err });
}
