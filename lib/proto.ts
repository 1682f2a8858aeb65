/**
 * The gRPC package definitions of the CSI and provider APIs.
 *
 * The .proto sources are imported as text so that `deno compile` embeds them in the binary: nothing is
 * read from the source tree at run time.
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
  return grpc.loadPackageDefinition(fromJSON(parsed.root.toJSON(), LOADER_OPTIONS));
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
