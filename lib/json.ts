/** Checks on parsed JSON (API objects, YAML documents, provider attributes), shared by every reader of it. */

/** True for a JSON object: not null, not an array. */
export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/**
 * True when `a` and `b` serialize to the same JSON. Key order counts: callers that compare maps sort
 * them first.
 */
export function sameJson(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}
