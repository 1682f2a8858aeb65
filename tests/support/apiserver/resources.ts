/** The resource types the API-server stand-in serves, and how request paths map onto them. */

/** One REST resource, as the real API server's discovery would describe it. */
export interface ResourceType {
  /** API group; "" for the core group served under /api/v1. */
  group: string;
  /** Served versions; the first is the storage version. The same objects are served under each. */
  versions: string[];
  /** Plural name used in paths, e.g. "secretproviderclasspodstatuses". */
  plural: string;
  singular: string;
  kind: string;
  namespaced: boolean;
  /** True for a status subresource: PUT on the object keeps status, on /status everything else. */
  statusSubresource: boolean;
  /** Custom resources carry metadata.generation. */
  custom: boolean;
  /** DELETE answers with the deleted object (pods, custom resources, ...) instead of a Status. */
  deleteReturnsObject: boolean;
  /** Field selector labels accepted besides metadata.name and metadata.namespace. */
  fieldLabels: string[];
}

/** The group of the SecretProviderClass CRDs. */
export const SECRETS_STORE_GROUP = "secrets-store.csi.x-k8s.io";

const core = (r: Omit<ResourceType, "group" | "versions" | "custom">): ResourceType => ({
  group: "",
  versions: ["v1"],
  custom: false,
  ...r,
});

const crd = (plural: string, singular: string, kind: string): ResourceType => ({
  group: SECRETS_STORE_GROUP,
  versions: ["v1", "v1alpha1"],
  plural,
  singular,
  kind,
  namespaced: true,
  // Upstream's CRDs declare no subresources: the driver writes SPCPS status with a plain create/update.
  statusSubresource: false,
  custom: true,
  deleteReturnsObject: true,
  fieldLabels: [],
});

/** Every resource served, in discovery order. */
export const RESOURCES: readonly ResourceType[] = [
  core({
    plural: "pods",
    singular: "pod",
    kind: "Pod",
    namespaced: true,
    statusSubresource: true,
    deleteReturnsObject: true,
    fieldLabels: [
      "spec.nodeName",
      "spec.restartPolicy",
      "spec.schedulerName",
      "spec.serviceAccountName",
      "spec.hostNetwork",
      "status.phase",
      "status.podIP",
      "status.nominatedNodeName",
    ],
  }),
  core({
    plural: "secrets",
    singular: "secret",
    kind: "Secret",
    namespaced: true,
    statusSubresource: false,
    deleteReturnsObject: false,
    fieldLabels: ["type"],
  }),
  core({
    plural: "events",
    singular: "event",
    kind: "Event",
    namespaced: true,
    statusSubresource: false,
    deleteReturnsObject: false,
    fieldLabels: [
      "involvedObject.kind",
      "involvedObject.namespace",
      "involvedObject.name",
      "involvedObject.uid",
      "involvedObject.apiVersion",
      "involvedObject.resourceVersion",
      "involvedObject.fieldPath",
      "reason",
      "reportingComponent",
      "source",
      "type",
    ],
  }),
  core({
    plural: "serviceaccounts",
    singular: "serviceaccount",
    kind: "ServiceAccount",
    namespaced: true,
    statusSubresource: false,
    deleteReturnsObject: true,
    fieldLabels: [],
  }),
  core({
    plural: "nodes",
    singular: "node",
    kind: "Node",
    namespaced: false,
    statusSubresource: true,
    deleteReturnsObject: false,
    fieldLabels: ["spec.unschedulable"],
  }),
  {
    group: "events.k8s.io",
    versions: ["v1"],
    plural: "events",
    singular: "event",
    kind: "Event",
    namespaced: true,
    statusSubresource: false,
    custom: false,
    deleteReturnsObject: false,
    fieldLabels: [
      "reason",
      "regarding.kind",
      "regarding.namespace",
      "regarding.name",
      "regarding.uid",
      "type",
    ],
  },
  crd("secretproviderclasses", "secretproviderclass", "SecretProviderClass"),
  crd("secretproviderclasspodstatuses", "secretproviderclasspodstatus", "SecretProviderClassPodStatus"),
];

/** "v1" for the core group, "group/version" otherwise. */
export function apiVersionOf(type: ResourceType, version = type.versions[0]): string {
  return type.group === "" ? version : `${type.group}/${version}`;
}

/** The name used in error messages: "secrets", or "plural.group" outside the core group. */
export function qualifiedName(type: ResourceType): string {
  return type.group === "" ? type.plural : `${type.plural}.${type.group}`;
}

/**
 * Finds a resource type by any of the names a test might use: plural ("secrets"), plural.group
 * ("secretproviderclasses.secrets-store.csi.x-k8s.io"), kind ("Secret") or apiVersion + kind.
 */
export function findResource(name: string, apiVersion?: string): ResourceType | undefined {
  const group = apiVersion === undefined
    ? undefined
    : apiVersion.includes("/")
    ? apiVersion.split("/")[0]
    : "";
  const candidates = RESOURCES.filter((r) => group === undefined || r.group === group);
  return candidates.find((r) => r.kind === name) ??
    candidates.find((r) => r.plural === name) ??
    candidates.find((r) => qualifiedName(r) === name);
}

/** A request path resolved to a resource (and possibly a namespace, object name and subresource). */
export interface ResourcePath {
  type: ResourceType;
  version: string;
  /** Set for /namespaces/{ns}/... paths; undefined for cluster-scoped or all-namespaces requests. */
  namespace?: string;
  name?: string;
  subresource?: string;
}

/**
 * Parses /api/v1/[namespaces/{ns}/]{resource}[/{name}[/{sub}]] and the /apis/{group}/{version}/ form.
 * Returns undefined for paths that name no served resource (the caller answers 404).
 */
export function parseResourcePath(pathname: string): ResourcePath | undefined {
  const parts = pathname.split("/").filter((p) => p !== "").map(decodeURIComponent);
  let group: string;
  let rest: string[];
  if (parts[0] === "api" && parts.length >= 3) {
    group = "";
    rest = parts.slice(1);
  } else if (parts[0] === "apis" && parts.length >= 4) {
    group = parts[1];
    rest = parts.slice(2);
  } else {
    return undefined;
  }
  const [version, ...tail] = rest;
  let namespace: string | undefined;
  let segments = tail;
  if (tail[0] === "namespaces" && tail.length >= 3) {
    namespace = tail[1];
    segments = tail.slice(2);
  }
  const [plural, name, subresource, ...extra] = segments;
  const type = RESOURCES.find((r) =>
    r.group === group && r.plural === plural && r.versions.includes(version)
  );
  if (type === undefined || extra.length > 0) return undefined;
  if (namespace !== undefined && !type.namespaced) return undefined;
  // A namespaced object can only be addressed inside its namespace; without one only list/watch work.
  if (namespace === undefined && type.namespaced && name !== undefined) return undefined;
  if (subresource !== undefined && !(subresource === "status" && type.statusSubresource)) return undefined;
  return { type, version, namespace, name, subresource };
}
