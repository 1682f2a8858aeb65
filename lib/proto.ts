/**
 * The gRPC package definitions of the CSI and provider APIs.
 *
 * The .proto sources are imported as text so that `deno compile` embeds them in the binary: nothing is
 * read from the source tree at run time.
 *
 * protobufjs decodes a `string` field with invalid UTF-8 lossily (each bad byte becomes U+FFFD), so a
 * target path or a provider's file name would silently be another one. grpc-go refuses such messages;
 * here every decoded message (requests and responses) is checked against its raw bytes, and one with an
 * invalid string carries the field's name under INVALID_UTF8 for the receiver to refuse with its own
 * sentence and code (`invalidUtf8Field`).
 */
import * as grpc from "@grpc/grpc-js";
import { fromJSON, type Options } from "@grpc/proto-loader";
import protobuf from "protobufjs";
import csiSource from "../proto/csi.proto" with { type: "text" };
import providerSource from "../proto/provider.proto" with { type: "text" };

/** Decoding options shared by every service: enums as names, 64-bit ints as strings, defaults filled. */
const LOADER_OPTIONS: Options = {
  keepCase: true,
  longs: String,
  enums: String,
  defaults: true,
  oneofs: true,
};

/** Where a decoded message records the first string field whose bytes are not UTF-8. */
const INVALID_UTF8 = Symbol("invalid UTF-8 field");

/** The name of the first string field of `message` that was not valid UTF-8 on the wire, if any. */
export function invalidUtf8Field(message: unknown): string | undefined {
  if (typeof message !== "object" || message === null) return undefined;
  return (message as { [INVALID_UTF8]?: string })[INVALID_UTF8];
}

const strictUtf8 = new TextDecoder("utf-8", { fatal: true });

function isUtf8(bytes: Uint8Array): boolean {
  try {
    strictUtf8.decode(bytes);
    return true;
  } catch {
    return false;
  }
}

const LENGTH_DELIMITED = 2;

const mapEntries = new WeakMap<protobuf.MapField, protobuf.Type>();

/** A map field's entries as the message they are on the wire: {1: key, 2: value}. */
function mapEntry(field: protobuf.MapField): protobuf.Type {
  let entry = mapEntries.get(field);
  if (!entry) {
    entry = new protobuf.Type(`${field.name}Entry`)
      .add(new protobuf.Field("key", 1, field.keyType))
      .add(new protobuf.Field("value", 2, field.type));
    if (field.resolvedType) entry.fieldsById[2].resolvedType = field.resolvedType;
    mapEntries.set(field, entry);
  }
  return entry;
}

/** The first string field below `type` in `reader` (up to `end`) whose bytes are not UTF-8, by name. */
function findInvalidUtf8(type: protobuf.Type, reader: protobuf.Reader, end: number): string | undefined {
  const seen = new Map<number, number>();
  while (reader.pos < end) {
    const tag = reader.uint32();
    const field = type.fieldsById[tag >>> 3];
    if (!field || (tag & 7) !== LENGTH_DELIMITED) {
      reader.skipType(tag & 7);
      continue;
    }
    const length = reader.uint32();
    const start = reader.pos;
    reader.pos = start + length;
    const bytes = reader.buf.subarray(start, start + length);
    const n = seen.get(field.id) ?? 0;
    seen.set(field.id, n + 1);
    const name = field.repeated ? `${field.name}[${n}]` : field.name;
    if (field instanceof protobuf.MapField) {
      const bad = findInvalidUtf8(mapEntry(field), protobuf.Reader.create(bytes), length);
      if (bad !== undefined) return `${field.name} (a ${bad === "key" ? "key" : "value"})`;
    } else if (field.type === "string") {
      if (!isUtf8(bytes)) return name;
    } else if (field.resolvedType instanceof protobuf.Type) {
      const bad = findInvalidUtf8(field.resolvedType, protobuf.Reader.create(bytes), length);
      if (bad !== undefined) return `${name}.${bad}`;
    }
  }
  return undefined;
}

type Deserialize = (bytes: Uint8Array) => unknown;

/** `deserialize`, marking what it returns when a string field of `type` is not UTF-8 on the wire. */
function checkingUtf8(type: protobuf.Type, deserialize: Deserialize): Deserialize {
  return (bytes) => {
    const message = deserialize(bytes);
    const bad = findInvalidUtf8(type, protobuf.Reader.create(bytes), bytes.length);
    if (bad !== undefined) (message as { [INVALID_UTF8]?: string })[INVALID_UTF8] = bad;
    return message;
  };
}

interface MethodDefinition {
  requestDeserialize: Deserialize;
  responseDeserialize: Deserialize;
}

function load(source: string): grpc.GrpcObject {
  const parsed = protobuf.parse(source, { keepCase: true });
  // protobuf.parse only records imports; well-known types (wrappers.proto, ...) come from protobufjs' copies.
  for (const file of parsed.imports ?? []) {
    const wellKnown = protobuf.common.get(file);
    if (!wellKnown?.nested) {
      throw new Error(`proto import "${file}" is not a well-known type bundled with protobufjs`);
    }
    parsed.root.addJSON(wellKnown.nested);
  }
  parsed.root.resolveAll();
  const definition = fromJSON(parsed.root.toJSON(), LOADER_OPTIONS);
  for (const [name, entry] of Object.entries(definition)) {
    const service = parsed.root.lookup(name);
    if (!(service instanceof protobuf.Service)) continue;
    for (const [methodName, method] of Object.entries(entry as unknown as Record<string, MethodDefinition>)) {
      const rpc = service.methods[methodName];
      method.requestDeserialize = checkingUtf8(rpc.resolvedRequestType!, method.requestDeserialize);
      method.responseDeserialize = checkingUtf8(rpc.resolvedResponseType!, method.responseDeserialize);
    }
  }
  return grpc.loadPackageDefinition(definition);
}

type ServiceCtor = grpc.ServiceClientConstructor;

let csi: grpc.GrpcObject | undefined;
let provider: grpc.GrpcObject | undefined;

function csiPackage(): grpc.GrpcObject {
  csi ??= (load(csiSource).csi as grpc.GrpcObject).v1 as grpc.GrpcObject;
  return csi;
}

function providerPackage(): grpc.GrpcObject {
  provider ??= load(providerSource).v1alpha1 as grpc.GrpcObject;
  return provider;
}

/** `csi.v1.Identity`, `csi.v1.Node` and `csi.v1.Controller` client constructors (their `.service` for servers). */
export function csiServices(): { Identity: ServiceCtor; Node: ServiceCtor; Controller: ServiceCtor } {
  const pkg = csiPackage();
  return {
    Identity: pkg.Identity as ServiceCtor,
    Node: pkg.Node as ServiceCtor,
    Controller: pkg.Controller as ServiceCtor,
  };
}

/** `v1alpha1.CSIDriverProvider` client constructor (its `.service` for servers). */
export function providerService(): ServiceCtor {
  return providerPackage().CSIDriverProvider as ServiceCtor;
}
