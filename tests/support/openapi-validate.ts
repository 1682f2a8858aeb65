/**
 * A validator for the subset of OpenAPI v3 structural schemas that CustomResourceDefinitions use: type
 * (object, array, string, boolean, integer, number), properties, required, items, additionalProperties,
 * enum, nullable and x-kubernetes-preserve-unknown-fields.
 *
 * It judges an object the way `kubectl apply` does with its default strict field validation: a field the
 * schema does not declare is an error (the API server would otherwise prune it silently). As in the API
 * server, the root's `metadata` is ObjectMeta and not the CRD's business.
 */
import { isRecord } from "../../lib/json.ts";

/** One node of a structural schema. */
export interface Schema {
  type?: "object" | "array" | "string" | "boolean" | "integer" | "number";
  properties?: Record<string, Schema>;
  required?: string[];
  items?: Schema;
  additionalProperties?: Schema | boolean;
  enum?: unknown[];
  nullable?: boolean;
  description?: string;
  "x-kubernetes-preserve-unknown-fields"?: boolean;
}

function typeOf(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "array";
  if (typeof value === "number") return Number.isInteger(value) ? "integer" : "number";
  return typeof value;
}

function hasType(value: unknown, type: Schema["type"]): boolean {
  const actual = typeOf(value);
  return actual === type || (type === "number" && actual === "integer");
}

/**
 * Validates `value` against `schema`; returns one message per problem, each starting with the JSON path
 * of the offending field. An empty list means the value is accepted.
 */
export function validate(schema: Schema, value: unknown, path = ""): string[] {
  const at = path === "" ? "(root)" : path;
  if (value === null && schema.nullable) return [];
  if (schema.type !== undefined && !hasType(value, schema.type)) {
    return [`${at}: expected ${schema.type}, got ${typeOf(value)}`];
  }
  if (schema.enum !== undefined && !schema.enum.includes(value)) {
    return [`${at}: ${JSON.stringify(value)} is not one of ${JSON.stringify(schema.enum)}`];
  }
  if (Array.isArray(value)) {
    return schema.items === undefined
      ? []
      : value.flatMap((item, i) => validate(schema.items!, item, `${path}[${i}]`));
  }
  if (!isRecord(value)) return [];

  const errors: string[] = [];
  for (const name of schema.required ?? []) {
    if (!(name in value)) errors.push(`${at}: required field ${name} is missing`);
  }
  for (const [name, field] of Object.entries(value)) {
    const fieldPath = path === "" ? name : `${path}.${name}`;
    const declared = schema.properties?.[name];
    if (declared !== undefined) {
      // ObjectMeta at the root is validated by the API server itself, not by the CRD schema.
      if (!(path === "" && name === "metadata")) errors.push(...validate(declared, field, fieldPath));
    } else if (isRecord(schema.additionalProperties)) {
      errors.push(...validate(schema.additionalProperties, field, fieldPath));
    } else if (schema.additionalProperties !== true && !schema["x-kubernetes-preserve-unknown-fields"]) {
      errors.push(`${fieldPath}: unknown field`);
    }
  }
  return errors;
}
