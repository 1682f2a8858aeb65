/** /version, /api, /apis and the per-group-version resource lists, enough for client-node's discovery. */

import { apiVersionOf, RESOURCES, type ResourceType } from "./resources.ts";

const VERBS = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"];

function groups(): Map<string, string[]> {
  const byGroup = new Map<string, string[]>();
  for (const r of RESOURCES.filter((r) => r.group !== "")) {
    const versions = byGroup.get(r.group) ?? [];
    for (const v of r.versions) if (!versions.includes(v)) versions.push(v);
    byGroup.set(r.group, versions);
  }
  return byGroup;
}

function apiGroup(name: string, versions: string[]) {
  const list = versions.map((version) => ({ groupVersion: `${name}/${version}`, version }));
  return { name, versions: list, preferredVersion: list[0] };
}

function resourceList(group: string, version: string) {
  const served = RESOURCES.filter((r) => r.group === group && r.versions.includes(version));
  if (served.length === 0) return undefined;
  const entry = (r: ResourceType) => ({
    name: r.plural,
    singularName: r.singular,
    namespaced: r.namespaced,
    kind: r.kind,
    verbs: VERBS,
  });
  const resources = served.flatMap((r) =>
    r.statusSubresource
      ? [entry(r), {
        name: `${r.plural}/status`,
        singularName: "",
        namespaced: r.namespaced,
        kind: r.kind,
        verbs: ["get", "patch", "update"],
      }]
      : [entry(r)]
  );
  return {
    kind: "APIResourceList",
    apiVersion: "v1",
    groupVersion: apiVersionOf(served[0], version),
    resources,
  };
}

/** The discovery document for a path, or undefined when the path is not a discovery path. */
export function discovery(pathname: string, host: string): unknown {
  const parts = pathname.split("/").filter((p) => p !== "");
  if (pathname === "/version") {
    return {
      major: "1",
      minor: "33",
      gitVersion: "v1.33.0-apiserver-standin",
      gitCommit: "0000000000000000000000000000000000000000",
      gitTreeState: "clean",
      buildDate: "2025-01-01T00:00:00Z",
      goVersion: "go1.24.0",
      compiler: "gc",
      platform: "linux/amd64",
    };
  }
  if (parts.length === 1 && parts[0] === "api") {
    return {
      kind: "APIVersions",
      versions: ["v1"],
      serverAddressByClientCIDRs: [{ clientCIDR: "0.0.0.0/0", serverAddress: host }],
    };
  }
  if (parts.length === 2 && parts[0] === "api") return resourceList("", parts[1]);
  if (parts.length === 1 && parts[0] === "apis") {
    const list = [...groups()].map(([name, versions]) => apiGroup(name, versions));
    return { kind: "APIGroupList", apiVersion: "v1", groups: list };
  }
  if (parts.length === 2 && parts[0] === "apis") {
    const versions = groups().get(parts[1]);
    return versions === undefined
      ? undefined
      : { kind: "APIGroup", apiVersion: "v1", ...apiGroup(parts[1], versions) };
  }
  if (parts.length === 3 && parts[0] === "apis") return resourceList(parts[1], parts[2]);
  return undefined;
}
