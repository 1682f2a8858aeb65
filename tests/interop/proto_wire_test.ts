/**
 * The wire contract of proto/: every message's field names, numbers, types and labels, every enum value,
 * and every service method with its request and response types, compared against tables written from the
 * CSI spec (container-storage-interface/spec csi.proto, package csi.v1) and upstream's provider API
 * (kubernetes-sigs/secrets-store-csi-driver provider/v1alpha1/service.proto). A renumbered, renamed or
 * retyped field breaks kubelet or every provider silently at run time; here it fails a test.
 *
 * The protos are checked twice: as protoc compiles them (the FileDescriptorSet a Go or C++ peer is built
 * from) and as protobufjs parses them (what the driver itself loads at run time, lib/proto.ts).
 */
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import protobuf from "protobufjs";
import descriptorExt from "protobufjs/ext/descriptor/index.js";

const PROTO_DIR = fileURLToPath(new URL("../../proto/", import.meta.url));

/** Full name (no leading dot) → lines; one shape for messages, enums and services. */
interface WireView {
  /** File name → package. */
  files: Record<string, string>;
  messages: Record<string, string[]>;
  enums: Record<string, string[]>;
  services: Record<string, string[]>;
}

const MAP = "map<string, string>";

/**
 * csi.v1 as the CSI spec defines it, for the messages this driver declares (Identity, Node, and the
 * Controller's capabilities). Field lines are `[repeated ]type name = number[ [oneof name]]`.
 */
const CSI: Omit<WireView, "files"> = {
  messages: {
    "csi.v1.GetPluginInfoRequest": [],
    "csi.v1.GetPluginInfoResponse": ["string name = 1", "string vendor_version = 2", `${MAP} manifest = 3`],
    "csi.v1.GetPluginCapabilitiesRequest": [],
    "csi.v1.GetPluginCapabilitiesResponse": ["repeated csi.v1.PluginCapability capabilities = 1"],
    "csi.v1.PluginCapability": [
      "csi.v1.PluginCapability.Service service = 1 [oneof type]",
      "csi.v1.PluginCapability.VolumeExpansion volume_expansion = 2 [oneof type]",
    ],
    "csi.v1.PluginCapability.Service": ["csi.v1.PluginCapability.Service.Type type = 1"],
    "csi.v1.PluginCapability.VolumeExpansion": ["csi.v1.PluginCapability.VolumeExpansion.Type type = 1"],
    "csi.v1.ProbeRequest": [],
    "csi.v1.ProbeResponse": ["google.protobuf.BoolValue ready = 1"],
    "csi.v1.ControllerGetCapabilitiesRequest": [],
    "csi.v1.ControllerGetCapabilitiesResponse": [
      "repeated csi.v1.ControllerServiceCapability capabilities = 1",
    ],
    "csi.v1.ControllerServiceCapability": ["csi.v1.ControllerServiceCapability.RPC rpc = 1 [oneof type]"],
    "csi.v1.ControllerServiceCapability.RPC": ["csi.v1.ControllerServiceCapability.RPC.Type type = 1"],
    "csi.v1.VolumeCapability": [
      "csi.v1.VolumeCapability.BlockVolume block = 1 [oneof access_type]",
      "csi.v1.VolumeCapability.MountVolume mount = 2 [oneof access_type]",
      "csi.v1.VolumeCapability.AccessMode access_mode = 3",
    ],
    "csi.v1.VolumeCapability.BlockVolume": [],
    "csi.v1.VolumeCapability.MountVolume": [
      "string fs_type = 1",
      "repeated string mount_flags = 2",
      "string volume_mount_group = 3",
    ],
    "csi.v1.VolumeCapability.AccessMode": ["csi.v1.VolumeCapability.AccessMode.Mode mode = 1"],
    "csi.v1.CapacityRange": ["int64 required_bytes = 1", "int64 limit_bytes = 2"],
    "csi.v1.Topology": [`${MAP} segments = 1`],
    "csi.v1.NodeStageVolumeRequest": [
      "string volume_id = 1",
      `${MAP} publish_context = 2`,
      "string staging_target_path = 3",
      "csi.v1.VolumeCapability volume_capability = 4",
      `${MAP} secrets = 5`,
      `${MAP} volume_context = 6`,
    ],
    "csi.v1.NodeStageVolumeResponse": [],
    "csi.v1.NodeUnstageVolumeRequest": ["string volume_id = 1", "string staging_target_path = 2"],
    "csi.v1.NodeUnstageVolumeResponse": [],
    "csi.v1.NodePublishVolumeRequest": [
      "string volume_id = 1",
      `${MAP} publish_context = 2`,
      "string staging_target_path = 3",
      "string target_path = 4",
      "csi.v1.VolumeCapability volume_capability = 5",
      "bool readonly = 6",
      `${MAP} secrets = 7`,
      `${MAP} volume_context = 8`,
    ],
    "csi.v1.NodePublishVolumeResponse": [],
    "csi.v1.NodeUnpublishVolumeRequest": ["string volume_id = 1", "string target_path = 2"],
    "csi.v1.NodeUnpublishVolumeResponse": [],
    "csi.v1.NodeGetVolumeStatsRequest": [
      "string volume_id = 1",
      "string volume_path = 2",
      "string staging_target_path = 3",
    ],
    "csi.v1.NodeGetVolumeStatsResponse": [
      "repeated csi.v1.VolumeUsage usage = 1",
      "csi.v1.VolumeCondition volume_condition = 2",
    ],
    "csi.v1.VolumeUsage": [
      "int64 available = 1",
      "int64 total = 2",
      "int64 used = 3",
      "csi.v1.VolumeUsage.Unit unit = 4",
    ],
    "csi.v1.VolumeCondition": ["bool abnormal = 1", "string message = 2"],
    "csi.v1.NodeGetCapabilitiesRequest": [],
    "csi.v1.NodeGetCapabilitiesResponse": ["repeated csi.v1.NodeServiceCapability capabilities = 1"],
    "csi.v1.NodeServiceCapability": ["csi.v1.NodeServiceCapability.RPC rpc = 1 [oneof type]"],
    "csi.v1.NodeServiceCapability.RPC": ["csi.v1.NodeServiceCapability.RPC.Type type = 1"],
    "csi.v1.NodeGetInfoRequest": [],
    "csi.v1.NodeGetInfoResponse": [
      "string node_id = 1",
      "int64 max_volumes_per_node = 2",
      "csi.v1.Topology accessible_topology = 3",
    ],
    "csi.v1.NodeExpandVolumeRequest": [
      "string volume_id = 1",
      "string volume_path = 2",
      "csi.v1.CapacityRange capacity_range = 3",
      "string staging_target_path = 4",
      "csi.v1.VolumeCapability volume_capability = 5",
      `${MAP} secrets = 6`,
    ],
    "csi.v1.NodeExpandVolumeResponse": ["int64 capacity_bytes = 1"],
  },
  enums: {
    "csi.v1.PluginCapability.Service.Type": [
      "UNKNOWN = 0",
      "CONTROLLER_SERVICE = 1",
      "VOLUME_ACCESSIBILITY_CONSTRAINTS = 2",
      "GROUP_CONTROLLER_SERVICE = 3",
      "SNAPSHOT_METADATA_SERVICE = 4",
    ],
    "csi.v1.PluginCapability.VolumeExpansion.Type": ["UNKNOWN = 0", "ONLINE = 1", "OFFLINE = 2"],
    "csi.v1.ControllerServiceCapability.RPC.Type": [
      "UNKNOWN = 0",
      "CREATE_DELETE_VOLUME = 1",
      "PUBLISH_UNPUBLISH_VOLUME = 2",
      "LIST_VOLUMES = 3",
      "GET_CAPACITY = 4",
      "CREATE_DELETE_SNAPSHOT = 5",
      "LIST_SNAPSHOTS = 6",
      "CLONE_VOLUME = 7",
      "PUBLISH_READONLY = 8",
      "EXPAND_VOLUME = 9",
      "LIST_VOLUMES_PUBLISHED_NODES = 10",
      "VOLUME_CONDITION = 11",
      "GET_VOLUME = 12",
      "SINGLE_NODE_MULTI_WRITER = 13",
      "MODIFY_VOLUME = 14",
      "GET_SNAPSHOT = 15",
    ],
    "csi.v1.VolumeCapability.AccessMode.Mode": [
      "UNKNOWN = 0",
      "SINGLE_NODE_WRITER = 1",
      "SINGLE_NODE_READER_ONLY = 2",
      "MULTI_NODE_READER_ONLY = 3",
      "MULTI_NODE_SINGLE_WRITER = 4",
      "MULTI_NODE_MULTI_WRITER = 5",
      "SINGLE_NODE_SINGLE_WRITER = 6",
      "SINGLE_NODE_MULTI_WRITER = 7",
    ],
    "csi.v1.VolumeUsage.Unit": ["UNKNOWN = 0", "BYTES = 1", "INODES = 2"],
    "csi.v1.NodeServiceCapability.RPC.Type": [
      "UNKNOWN = 0",
      "STAGE_UNSTAGE_VOLUME = 1",
      "GET_VOLUME_STATS = 2",
      "EXPAND_VOLUME = 3",
      "VOLUME_CONDITION = 4",
      "SINGLE_NODE_MULTI_WRITER = 5",
      "VOLUME_MOUNT_GROUP = 6",
    ],
  },
  services: {
    "csi.v1.Identity": [
      "GetPluginInfo(csi.v1.GetPluginInfoRequest) returns (csi.v1.GetPluginInfoResponse)",
      "GetPluginCapabilities(csi.v1.GetPluginCapabilitiesRequest) returns (csi.v1.GetPluginCapabilitiesResponse)",
      "Probe(csi.v1.ProbeRequest) returns (csi.v1.ProbeResponse)",
    ],
    "csi.v1.Controller": [
      "ControllerGetCapabilities(csi.v1.ControllerGetCapabilitiesRequest) returns (csi.v1.ControllerGetCapabilitiesResponse)",
    ],
    "csi.v1.Node": [
      "NodeStageVolume(csi.v1.NodeStageVolumeRequest) returns (csi.v1.NodeStageVolumeResponse)",
      "NodeUnstageVolume(csi.v1.NodeUnstageVolumeRequest) returns (csi.v1.NodeUnstageVolumeResponse)",
      "NodePublishVolume(csi.v1.NodePublishVolumeRequest) returns (csi.v1.NodePublishVolumeResponse)",
      "NodeUnpublishVolume(csi.v1.NodeUnpublishVolumeRequest) returns (csi.v1.NodeUnpublishVolumeResponse)",
      "NodeGetVolumeStats(csi.v1.NodeGetVolumeStatsRequest) returns (csi.v1.NodeGetVolumeStatsResponse)",
      "NodeExpandVolume(csi.v1.NodeExpandVolumeRequest) returns (csi.v1.NodeExpandVolumeResponse)",
      "NodeGetCapabilities(csi.v1.NodeGetCapabilitiesRequest) returns (csi.v1.NodeGetCapabilitiesResponse)",
      "NodeGetInfo(csi.v1.NodeGetInfoRequest) returns (csi.v1.NodeGetInfoResponse)",
    ],
  },
};

/** v1alpha1 as upstream's provider/v1alpha1/service.proto defines it. */
const PROVIDER: Omit<WireView, "files"> = {
  messages: {
    "v1alpha1.VersionRequest": ["string version = 1"],
    "v1alpha1.VersionResponse": [
      "string version = 1",
      "string runtime_name = 2",
      "string runtime_version = 3",
    ],
    "v1alpha1.MountRequest": [
      "string attributes = 1",
      "string secrets = 2",
      "string target_path = 3",
      "string permission = 4",
      "repeated v1alpha1.ObjectVersion current_object_version = 5",
    ],
    "v1alpha1.MountResponse": [
      "repeated v1alpha1.ObjectVersion object_version = 1",
      "v1alpha1.Error error = 2",
      "repeated v1alpha1.File files = 3",
    ],
    "v1alpha1.File": ["string path = 1", "int32 mode = 2", "bytes contents = 3"],
    "v1alpha1.ObjectVersion": ["string id = 1", "string version = 2"],
    "v1alpha1.Error": ["string code = 1"],
  },
  enums: {},
  services: {
    "v1alpha1.CSIDriverProvider": [
      "Version(v1alpha1.VersionRequest) returns (v1alpha1.VersionResponse)",
      "Mount(v1alpha1.MountRequest) returns (v1alpha1.MountResponse)",
    ],
  },
};

const EXPECTED: WireView = {
  files: { "csi.proto": "csi.v1", "provider.proto": "v1alpha1" },
  messages: { ...CSI.messages, ...PROVIDER.messages },
  enums: { ...CSI.enums, ...PROVIDER.enums },
  services: { ...CSI.services, ...PROVIDER.services },
};

/** Every difference between two views, one sentence each; empty when they match. */
function differences(expected: WireView, actual: WireView): string[] {
  const out: string[] = [];
  for (const kind of ["files", "messages", "enums", "services"] as const) {
    const want = expected[kind] as Record<string, string | string[]>;
    const got = actual[kind] as Record<string, string | string[]>;
    for (const name of Object.keys(want)) {
      if (!(name in got)) out.push(`${kind}: ${name} is missing`);
    }
    for (const name of Object.keys(got)) {
      if (!(name in want)) {
        out.push(`${kind}: ${name} is not in the spec table (add it from the spec, or remove it)`);
        continue;
      }
      const wantLines = [want[name]].flat();
      const gotLines = [got[name]].flat();
      for (const line of gotLines) {
        if (!wantLines.includes(line)) out.push(`${kind}: ${name} has "${line}", not in the spec`);
      }
      for (const line of wantLines) {
        if (!gotLines.includes(line)) out.push(`${kind}: ${name} lacks "${line}"`);
      }
    }
  }
  return out;
}

// ---- protoc's view: a FileDescriptorSet ----

interface FieldProto {
  name: string;
  number: number;
  label: string;
  type: string;
  typeName?: string;
  oneofIndex?: number;
  proto3Optional?: boolean;
}
interface MessageProto {
  name: string;
  field?: FieldProto[];
  nestedType?: MessageProto[];
  enumType?: EnumProto[];
  oneofDecl?: { name: string }[];
  options?: { mapEntry?: boolean };
}
interface EnumProto {
  name: string;
  value?: { name: string; number: number }[];
}
interface FileProto {
  name: string;
  package?: string;
  syntax?: string;
  messageType?: MessageProto[];
  enumType?: EnumProto[];
  service?: {
    name: string;
    method?: {
      name: string;
      inputType: string;
      outputType: string;
      clientStreaming?: boolean;
      serverStreaming?: boolean;
    }[];
  }[];
}

/** Compiles proto/ with protoc into a FileDescriptorSet (with imports, as a Go build sees them). */
async function compileDescriptorSet(): Promise<FileProto[]> {
  const out = await Deno.makeTempFile({ prefix: "proto-wire-", suffix: ".pb" });
  try {
    const result = await new Deno.Command("protoc", {
      args: [
        `-I${PROTO_DIR}`,
        "--include_imports",
        `--descriptor_set_out=${out}`,
        "csi.proto",
        "provider.proto",
      ],
      stdin: "null",
    }).output();
    assert.ok(result.success, `protoc failed:\n${new TextDecoder().decode(result.stderr)}`);
    // deno-lint-ignore no-explicit-any -- protobufjs' descriptor extension ships no types
    const set = (descriptorExt as any).FileDescriptorSet.decode(await Deno.readFile(out));
    return set.toJSON().file as FileProto[];
  } finally {
    await Deno.remove(out);
  }
}

const SCALARS: Record<string, string> = {
  TYPE_DOUBLE: "double",
  TYPE_FLOAT: "float",
  TYPE_INT64: "int64",
  TYPE_UINT64: "uint64",
  TYPE_INT32: "int32",
  TYPE_FIXED64: "fixed64",
  TYPE_FIXED32: "fixed32",
  TYPE_BOOL: "bool",
  TYPE_STRING: "string",
  TYPE_BYTES: "bytes",
  TYPE_UINT32: "uint32",
  TYPE_SFIXED32: "sfixed32",
  TYPE_SFIXED64: "sfixed64",
  TYPE_SINT32: "sint32",
  TYPE_SINT64: "sint64",
};

/** The view of the project's own files in a FileDescriptorSet (imports such as wrappers.proto are skipped). */
function viewFromDescriptors(files: FileProto[]): WireView {
  const view: WireView = { files: {}, messages: {}, enums: {}, services: {} };
  const mapEntries = new Map<string, MessageProto>();
  const collectMaps = (prefix: string, messages: MessageProto[] = []) => {
    for (const m of messages) {
      if (m.options?.mapEntry) mapEntries.set(`${prefix}.${m.name}`, m);
      collectMaps(`${prefix}.${m.name}`, m.nestedType);
    }
  };
  for (const file of files) collectMaps(file.package ?? "", file.messageType);

  const typeOf = (f: FieldProto): string => {
    const entry = f.typeName ? mapEntries.get(f.typeName.slice(1)) : undefined;
    if (entry) {
      const [key, value] = entry.field ?? [];
      return `map<${typeOf(key)}, ${typeOf(value)}>`;
    }
    return SCALARS[f.type] ?? (f.typeName ?? "?").slice(1);
  };
  const addEnum = (name: string, e: EnumProto) => {
    view.enums[name] = (e.value ?? []).map((v) => `${v.name} = ${v.number}`);
  };
  const addMessage = (name: string, m: MessageProto) => {
    view.messages[name] = (m.field ?? []).map((f) => {
      const isMap = typeOf(f).startsWith("map<");
      const label = f.label === "LABEL_REPEATED" && !isMap
        ? "repeated "
        : f.proto3Optional
        ? "optional "
        : "";
      const oneof = f.oneofIndex !== undefined && !f.proto3Optional
        ? ` [oneof ${m.oneofDecl?.[f.oneofIndex]?.name}]`
        : "";
      return `${label}${typeOf(f)} ${f.name} = ${f.number}${oneof}`;
    });
    for (const nested of m.nestedType ?? []) {
      if (!nested.options?.mapEntry) addMessage(`${name}.${nested.name}`, nested);
    }
    for (const e of m.enumType ?? []) addEnum(`${name}.${e.name}`, e);
  };

  for (const file of files) {
    if (file.name.startsWith("google/protobuf/")) continue;
    const pkg = file.package ?? "";
    view.files[file.name] = pkg;
    for (const m of file.messageType ?? []) addMessage(`${pkg}.${m.name}`, m);
    for (const e of file.enumType ?? []) addEnum(`${pkg}.${e.name}`, e);
    for (const s of file.service ?? []) {
      view.services[`${pkg}.${s.name}`] = (s.method ?? []).map((m) =>
        `${m.name}(${m.clientStreaming ? "stream " : ""}${m.inputType.slice(1)}) returns (${
          m.serverStreaming ? "stream " : ""
        }${m.outputType.slice(1)})`
      );
    }
  }
  return view;
}

// ---- protobufjs' view: what lib/proto.ts loads ----

/** Parses each proto the way lib/proto.ts does, with protobufjs' copy of the well-known types. */
async function viewFromProtobufjs(): Promise<WireView> {
  const view: WireView = { files: {}, messages: {}, enums: {}, services: {} };
  for (const file of ["csi.proto", "provider.proto"]) {
    const parsed = protobuf.parse(await Deno.readTextFile(`${PROTO_DIR}${file}`), { keepCase: true });
    const root = parsed.root;
    for (const imported of parsed.imports ?? []) {
      const common = protobuf.common.get(imported);
      assert.ok(common, `protobufjs has no built-in copy of ${imported}`);
      root.addJSON(common.nested!);
    }
    root.resolveAll();
    view.files[file] = parsed.package ?? "";
    const name = (t: protobuf.ReflectionObject) => t.fullName.slice(1);
    const walk = (ns: protobuf.NamespaceBase) => {
      for (const child of ns.nestedArray) {
        if (name(child).startsWith("google.protobuf")) continue;
        if (child instanceof protobuf.Type) {
          view.messages[name(child)] = child.fieldsArray.map((f) => {
            const type = f.resolvedType ? name(f.resolvedType) : f.type;
            const shown = f instanceof protobuf.MapField ? `map<${f.keyType}, ${type}>` : type;
            const label = f.repeated ? "repeated " : f.options?.proto3_optional ? "optional " : "";
            const oneof = f.partOf && !f.options?.proto3_optional ? ` [oneof ${f.partOf.name}]` : "";
            return `${label}${shown} ${f.name} = ${f.id}${oneof}`;
          });
        } else if (child instanceof protobuf.Enum) {
          view.enums[name(child)] = Object.entries(child.values).map(([k, v]) => `${k} = ${v}`);
        } else if (child instanceof protobuf.Service) {
          view.services[name(child)] = child.methodsArray.map((m) =>
            `${m.name}(${m.requestStream ? "stream " : ""}${name(m.resolvedRequestType!)}) returns (${
              m.responseStream ? "stream " : ""
            }${name(m.resolvedResponseType!)})`
          );
        }
        if (child instanceof protobuf.Namespace || child instanceof protobuf.Type) walk(child);
      }
    };
    walk(root);
  }
  return view;
}

Deno.test("proto/ as protoc compiles it matches the CSI spec and the upstream provider API", async () => {
  const files = await compileDescriptorSet();
  const diffs = differences(EXPECTED, viewFromDescriptors(files));
  assert.deepEqual(diffs, [], `proto/ differs from the spec:\n${diffs.join("\n")}`);
  // proto3: scalars without presence, packed repeated scalars; a proto2 file would encode differently.
  for (const file of files) assert.equal(file.syntax, "proto3", `${file.name} is not proto3`);
});

Deno.test("proto/ as protobufjs parses it (the driver's runtime view) matches the same tables", async () => {
  const diffs = differences(EXPECTED, await viewFromProtobufjs());
  assert.deepEqual(diffs, [], `proto/ as the driver loads it differs from the spec:\n${diffs.join("\n")}`);
});

Deno.test("the wire check catches a renumbered, a retyped and a relabelled field", async () => {
  const files = await compileDescriptorSet();
  const csi = files.find((f) => f.name === "csi.proto")!;
  const message = (name: string) => csi.messageType!.find((m) => m.name === name)!;
  const field = (m: string, f: string) => message(m).field!.find((x) => x.name === f)!;
  field("NodePublishVolumeRequest", "readonly").number = 9;
  field("NodeGetInfoResponse", "max_volumes_per_node").type = "TYPE_INT32";
  field("GetPluginCapabilitiesResponse", "capabilities").label = "LABEL_OPTIONAL";
  const provider = files.find((f) => f.name === "provider.proto")!;
  provider.service![0].method![1].outputType = ".v1alpha1.VersionResponse";

  const diffs = differences(EXPECTED, viewFromDescriptors(files));
  assert.deepEqual(diffs, [
    'messages: csi.v1.GetPluginCapabilitiesResponse has "csi.v1.PluginCapability capabilities = 1", not in the spec',
    'messages: csi.v1.GetPluginCapabilitiesResponse lacks "repeated csi.v1.PluginCapability capabilities = 1"',
    'messages: csi.v1.NodePublishVolumeRequest has "bool readonly = 9", not in the spec',
    'messages: csi.v1.NodePublishVolumeRequest lacks "bool readonly = 6"',
    'messages: csi.v1.NodeGetInfoResponse has "int32 max_volumes_per_node = 2", not in the spec',
    'messages: csi.v1.NodeGetInfoResponse lacks "int64 max_volumes_per_node = 2"',
    'services: v1alpha1.CSIDriverProvider has "Mount(v1alpha1.MountRequest) returns (v1alpha1.VersionResponse)", not in the spec',
    'services: v1alpha1.CSIDriverProvider lacks "Mount(v1alpha1.MountRequest) returns (v1alpha1.MountResponse)"',
  ]);
});
