/**
 * Which gRPC codes reach kubelet, and why: the one place that knows kubelet's rule.
 *
 * kubelet (pkg/volume/csi/csi_client.go, isFinalError) reads CANCELLED, DEADLINE_EXCEEDED, UNAVAILABLE,
 * RESOURCE_EXHAUSTED and ABORTED from NodePublishVolume as "the operation may still be in progress": the
 * volume becomes uncertain and kubelet must assume something is mounted. Every other code is final:
 * nothing was mounted, retry from scratch.
 *
 * A failed NodePublishVolume of this driver has always undone its work before it answers (the first
 * publish unmounts the tmpfs; a failed rotation keeps the old content and answers OK), so none of its
 * failures is in progress, whatever the code of the failure underneath: a provider's own UNAVAILABLE or
 * DEADLINE_EXCEEDED, the driver's deadline for the provider, an API server that answered 503. Those
 * become UNKNOWN, the code gRPC gives an error from another system whose code does not carry over, and
 * upstream's code for errors it wraps; the message keeps the sentence (and the provider's code name).
 */
import { GrpcStatus } from "../errors.ts";

/** The codes kubelet treats as "maybe still in progress". */
export const UNCERTAIN_CODES: ReadonlySet<number> = new Set([
  GrpcStatus.CANCELLED,
  GrpcStatus.DEADLINE_EXCEEDED,
  GrpcStatus.UNAVAILABLE,
  GrpcStatus.RESOURCE_EXHAUSTED,
  GrpcStatus.ABORTED,
]);

/** The code a failed NodePublishVolume answers with, given the code of the failure that caused it. */
export function publishFailureCode(code: GrpcStatus): GrpcStatus {
  return UNCERTAIN_CODES.has(code) ? GrpcStatus.UNKNOWN : code;
}
