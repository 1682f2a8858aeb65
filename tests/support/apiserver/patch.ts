/**
 * The three PATCH content types the driver may send: JSON merge patch (RFC 7386), strategic merge patch
 * (merge keys for the built-in fields listed below) and JSON patch (RFC 6902).
 */

import { badRequest, failure } from "./status.ts";

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type JsonObject = { [key: string]: Json };

/** PATCH content types and what the real server answers for each. */
export const PATCH_TYPES = {
  json: "application/json-patch+json",
  merge: "application/merge-patch+json",
  strategic: "application/strategic-merge-patch+json",
} as const;

const isObject = (v: unknown): v is JsonObject => typeof v === "object" && v !== null && !Array.isArray(v);

/** Deep equality of JSON values (key order ignored). */
export function jsonEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (Array.isArray(a) && Array.isArray(b)) {
    return a.length === b.length && a.every((v, i) => jsonEqual(v, b[i]));
  }
  if (isObject(a) && isObject(b)) {
    const keys = Object.keys(a);
    return keys.length === Object.keys(b).length &&
      keys.every((k) => Object.hasOwn(b, k) && jsonEqual(a[k], b[k]));
  }
  return false;
}

/** RFC 7386: objects merge recursively, null deletes a key, anything else (lists included) replaces. */
export function mergePatch(target: unknown, patch: unknown): Json {
  if (!isObject(patch)) return structuredClone(patch) as Json;
  const result: JsonObject = isObject(target) ? structuredClone(target) : {};
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) delete result[key];
    else result[key] = mergePatch(result[key], value);
  }
  return result;
}

/**
 * Merge keys of the built-in list fields the driver touches (path of the list, list indices dropped).
 * "primitive" marks lists of scalars merged as sets (e.g. finalizers); lists not named here are replaced.
 */
const MERGE_KEYS: Record<string, string> = {
  "metadata.ownerReferences": "uid",
  "metadata.finalizers": "primitive",
  "spec.containers": "name",
  "spec.initContainers": "name",
  "spec.ephemeralContainers": "name",
  "spec.containers.env": "name",
  "spec.initContainers.env": "name",
  "spec.containers.ports": "containerPort",
  "spec.containers.volumeMounts": "mountPath",
  "spec.initContainers.volumeMounts": "mountPath",
  "spec.volumes": "name",
  "spec.imagePullSecrets": "name",
  "spec.taints": "key",
  "status.conditions": "type",
  "status.addresses": "type",
  "secrets": "name",
  "imagePullSecrets": "name",
};

const DIRECTIVE = "$patch";
const RETAIN_KEYS = "$retainKeys";
const DELETE_FROM = "$deleteFromPrimitiveList/";
const ORDER = "$setElementOrder/";

function mergeKeyedList(original: Json[], patch: Json[], key: string, path: string): Json[] {
  if (patch.some((item) => isObject(item) && item[DIRECTIVE] === "replace")) {
    return patch.filter((item) => !(isObject(item) && item[DIRECTIVE] === "replace"));
  }
  const result = structuredClone(original);
  for (const item of patch) {
    if (!isObject(item)) throw badRequest(`strategic merge patch: list ${path} needs objects with "${key}"`);
    const index = result.findIndex((o) => isObject(o) && jsonEqual(o[key], item[key]));
    if (item[DIRECTIVE] === "delete") {
      if (index >= 0) result.splice(index, 1);
    } else if (index >= 0) {
      result[index] = strategicMerge(result[index], item, path);
    } else {
      result.push(strategicMerge({}, item, path));
    }
  }
  return result;
}

/**
 * Strategic merge patch: a merge patch whose lists with a known merge key merge element by element, with
 * the `$patch: replace|delete`, `$retainKeys` and `$deleteFromPrimitiveList/` directives.
 */
export function strategicMerge(target: unknown, patch: unknown, path = ""): Json {
  if (!isObject(patch)) return structuredClone(patch) as Json;
  if (patch[DIRECTIVE] === "replace") {
    const { [DIRECTIVE]: _, ...rest } = patch;
    return structuredClone(rest);
  }
  const result: JsonObject = isObject(target) ? structuredClone(target) : {};
  for (const [key, value] of Object.entries(patch)) {
    const childPath = path === "" ? key : `${path}.${key}`;
    if (key === DIRECTIVE || key === RETAIN_KEYS || key.startsWith(ORDER)) continue;
    if (key.startsWith(DELETE_FROM)) {
      const listKey = key.slice(DELETE_FROM.length);
      const current = result[listKey];
      if (Array.isArray(current) && Array.isArray(value)) {
        result[listKey] = current.filter((v) => !value.some((d) => jsonEqual(d, v)));
      }
      continue;
    }
    const strategy = MERGE_KEYS[childPath];
    const current = result[key];
    if (value === null || (isObject(value) && value[DIRECTIVE] === "delete")) {
      delete result[key];
    } else if (Array.isArray(value) && strategy === "primitive") {
      const merged = Array.isArray(current) ? [...current] : [];
      for (const v of value) if (!merged.some((m) => jsonEqual(m, v))) merged.push(v);
      result[key] = merged;
    } else if (Array.isArray(value) && strategy !== undefined) {
      result[key] = mergeKeyedList(Array.isArray(current) ? current : [], value, strategy, childPath);
    } else {
      result[key] = strategicMerge(current, value, childPath);
    }
  }
  const retain = patch[RETAIN_KEYS];
  if (Array.isArray(retain)) {
    for (const key of Object.keys(result)) if (!retain.includes(key)) delete result[key];
  }
  return result;
}

function parsePointer(pointer: string): string[] {
  if (pointer === "") return [];
  if (!pointer.startsWith("/")) throw badRequest(`json patch: invalid path "${pointer}"`);
  return pointer.slice(1).split("/").map((p) => p.replaceAll("~1", "/").replaceAll("~0", "~"));
}

const unprocessable = (message: string) => failure(422, message, "Invalid");

/** Resolves every segment but the last, returning the container and the last segment. */
function locate(doc: Json, segments: string[], op: string, pointer: string): { parent: Json; last: string } {
  let parent = doc;
  for (const segment of segments.slice(0, -1)) {
    const next: Json | undefined = Array.isArray(parent)
      ? parent[Number(segment)]
      : isObject(parent)
      ? parent[segment]
      : undefined;
    if (next === undefined) {
      throw unprocessable(`jsonpatch ${op} operation does not apply: doc is missing path: "${pointer}"`);
    }
    parent = next;
  }
  return { parent, last: segments[segments.length - 1] };
}

function readAt(doc: Json, pointer: string, op: string): Json {
  const segments = parsePointer(pointer);
  if (segments.length === 0) return doc;
  const { parent, last } = locate(doc, segments, op, pointer);
  const value = Array.isArray(parent) ? parent[Number(last)] : isObject(parent) ? parent[last] : undefined;
  if (value === undefined) {
    throw unprocessable(`jsonpatch ${op} operation does not apply: doc is missing key: ${pointer}`);
  }
  return value;
}

function removeAt(doc: Json, pointer: string, op: string): void {
  const { parent, last } = locate(doc, parsePointer(pointer), op, pointer);
  if (Array.isArray(parent) && Number(last) < parent.length) parent.splice(Number(last), 1);
  else if (isObject(parent) && Object.hasOwn(parent, last)) delete parent[last];
  else throw unprocessable(`jsonpatch ${op} operation does not apply: doc is missing key: ${pointer}`);
}

function addAt(doc: Json, pointer: string, value: Json, op: string): Json {
  const segments = parsePointer(pointer);
  if (segments.length === 0) return value;
  const { parent, last } = locate(doc, segments, op, pointer);
  if (Array.isArray(parent)) {
    const index = last === "-" ? parent.length : Number(last);
    if (!Number.isInteger(index) || index < 0 || index > parent.length) {
      throw unprocessable(`jsonpatch ${op} operation does not apply: index out of range: ${pointer}`);
    }
    parent.splice(index, 0, value);
  } else if (isObject(parent)) {
    parent[last] = value;
  } else {
    throw unprocessable(`jsonpatch ${op} operation does not apply: doc is missing path: "${pointer}"`);
  }
  return doc;
}

/** RFC 6902 JSON patch: add, remove, replace, move, copy, test. */
export function jsonPatch(target: unknown, operations: unknown): Json {
  if (!Array.isArray(operations)) throw badRequest("json patch: the body must be a JSON array of operations");
  let doc = structuredClone(target) as Json;
  for (const operation of operations) {
    if (!isObject(operation) || typeof operation.op !== "string" || typeof operation.path !== "string") {
      throw badRequest('json patch: each operation needs string fields "op" and "path"');
    }
    const { op, path } = operation;
    const from = typeof operation.from === "string" ? operation.from : "";
    switch (op) {
      case "add":
        doc = addAt(doc, path, structuredClone(operation.value ?? null), op);
        break;
      case "remove":
        removeAt(doc, path, op);
        break;
      case "replace":
        readAt(doc, path, op);
        if (parsePointer(path).length === 0) {
          doc = structuredClone(operation.value ?? null);
        } else {
          removeAt(doc, path, op);
          doc = addAt(doc, path, structuredClone(operation.value ?? null), op);
        }
        break;
      case "move": {
        const value = readAt(doc, from, op);
        removeAt(doc, from, op);
        doc = addAt(doc, path, value, op);
        break;
      }
      case "copy":
        doc = addAt(doc, path, structuredClone(readAt(doc, from, op)), op);
        break;
      case "test":
        if (!jsonEqual(readAt(doc, path, op), operation.value)) {
          throw unprocessable(`testing value ${path} failed: test failed`);
        }
        break;
      default:
        throw badRequest(`json patch: unknown operation "${op}"`);
    }
  }
  return doc;
}
