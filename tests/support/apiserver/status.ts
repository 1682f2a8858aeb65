/** metav1.Status bodies with the reasons, codes and messages the real API server uses. */

import { qualifiedName, type ResourceType } from "./resources.ts";

/** A metav1.Status object. */
export interface Status {
  kind: "Status";
  apiVersion: "v1";
  metadata: Record<string, never>;
  status: "Success" | "Failure";
  message?: string;
  reason?: string;
  details?: { name?: string; group?: string; kind?: string; uid?: string; causes?: unknown[] };
  code: number;
}

/** An error the server answers with a Failure Status; thrown by the store and caught by the HTTP layer. */
export class ApiError extends Error {
  constructor(readonly status: Status) {
    super(status.message);
  }

  get code(): number {
    return this.status.code;
  }
}

/** The reason the real server attaches to a bare HTTP code (used for injected faults too). */
export function reasonFor(code: number): string {
  const reasons: Record<number, string> = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    405: "MethodNotAllowed",
    409: "Conflict",
    410: "Gone",
    415: "UnsupportedMediaType",
    422: "Invalid",
    429: "TooManyRequests",
    500: "InternalError",
    503: "ServiceUnavailable",
    504: "Timeout",
  };
  return reasons[code] ?? "Unknown";
}

/** A Failure Status with an explicit reason and message. */
export function failure(
  code: number,
  message: string,
  reason = reasonFor(code),
  details?: Status["details"],
): ApiError {
  const status: Status = {
    kind: "Status",
    apiVersion: "v1",
    metadata: {},
    status: "Failure",
    message,
    reason,
    code,
  };
  if (details !== undefined) status.details = details;
  return new ApiError(status);
}

function detailsOf(type: ResourceType, name: string): NonNullable<Status["details"]> {
  return type.group === "" ? { name, kind: type.plural } : { name, group: type.group, kind: type.plural };
}

/** 404: `secrets "x" not found`. */
export function notFound(type: ResourceType, name: string): ApiError {
  return failure(404, `${qualifiedName(type)} "${name}" not found`, "NotFound", detailsOf(type, name));
}

/** 409 AlreadyExists: `secrets "x" already exists`. */
export function alreadyExists(type: ResourceType, name: string): ApiError {
  return failure(
    409,
    `${qualifiedName(type)} "${name}" already exists`,
    "AlreadyExists",
    detailsOf(type, name),
  );
}

/** 409 Conflict: `Operation cannot be fulfilled on secrets "x": <why>`. */
export function conflict(
  type: ResourceType,
  name: string,
  why = "the object has been modified; please apply your changes to the latest version and try again",
): ApiError {
  return failure(
    409,
    `Operation cannot be fulfilled on ${qualifiedName(type)} "${name}": ${why}`,
    "Conflict",
    detailsOf(type, name),
  );
}

/** 422 Invalid: `Secret "x" is invalid: <field>: <detail>`. */
export function invalid(type: ResourceType, name: string, field: string, detail: string): ApiError {
  return failure(422, `${type.kind} "${name}" is invalid: ${field}: ${detail}`, "Invalid", {
    ...detailsOf(type, name),
    kind: type.kind,
    causes: [{ reason: "FieldValueInvalid", message: detail, field }],
  });
}

/** 400 BadRequest with a message. */
export function badRequest(message: string): ApiError {
  return failure(400, message, "BadRequest");
}

/** The Success Status a DELETE answers with for resources that do not return the object. */
export function deleteSuccess(type: ResourceType, name: string, uid: string): Omit<Status, "code"> {
  // Like the real server: no code and no message on this Success.
  return {
    kind: "Status",
    apiVersion: "v1",
    metadata: {},
    status: "Success",
    details: { ...detailsOf(type, name), uid },
  };
}
