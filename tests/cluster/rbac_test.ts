/**
 * Least privilege, decided by the real API server's RBAC authorizer for the driver's ServiceAccount as
 * manifests/ binds it: every call in lib/k8s/api.ts's API_CALLS is allowed, a list of things the driver
 * must never do is denied, and the rules the server reports for the account are exactly API_CALLS (so an
 * extra verb in the ClusterRoles fails here, not only a missing one).
 */
import assert from "node:assert/strict";
import { API_CALLS } from "../../lib/k8s/api.ts";
import { DRIVER_USER, sharedCluster, testNamespace } from "../support/cluster.ts";

const { admin, driver } = sharedCluster();

interface Attributes {
  group: string;
  resource: string;
  verb: string;
  namespace?: string;
  subresource?: string;
  name?: string;
}

const show = (a: Attributes) =>
  `${a.verb} ${a.group || "core"}/${a.resource}${a.subresource ? `/${a.subresource}` : ""}` +
  (a.namespace ? ` in ${a.namespace}` : " cluster-wide");

/** The API server's RBAC decision for the driver's account. */
async function allowed(attributes: Attributes): Promise<boolean> {
  const review = await admin.post<{ status: { allowed: boolean } }>(
    "/apis/authorization.k8s.io/v1/subjectaccessreviews",
    {
      apiVersion: "authorization.k8s.io/v1",
      kind: "SubjectAccessReview",
      spec: {
        user: DRIVER_USER,
        groups: ["system:serviceaccounts", "system:serviceaccounts:kube-system", "system:authenticated"],
        resourceAttributes: attributes,
      },
    },
  );
  return review.status.allowed;
}

Deno.test("every API call the driver makes (API_CALLS) is allowed for its ServiceAccount, in any namespace and cluster-wide", async () => {
  const denied: string[] = [];
  for (const call of API_CALLS) {
    for (const verb of call.verbs) {
      for (const namespace of ["", "some-app"]) {
        const attributes = { group: call.group, resource: call.resource, verb, namespace };
        if (!await allowed(attributes)) denied.push(show(attributes));
      }
    }
  }
  assert.deepEqual(denied, [], "denied by the manifests' RBAC although lib/k8s makes these calls");
});

/** What the driver must never be able to do. */
const FORBIDDEN: Attributes[] = [
  // Secrets: read one by name for sync, never enumerate, watch or delete them.
  ...["list", "watch", "delete", "deletecollection", "patch"].flatMap((verb) => [
    { group: "", resource: "secrets", verb },
    { group: "", resource: "secrets", verb, namespace: "some-app" },
  ]),
  // Pods: read one by name; never list, change or delete them.
  ...["list", "watch", "create", "update", "patch", "delete"].map((verb) => ({
    group: "",
    resource: "pods",
    verb,
    namespace: "some-app",
  })),
  { group: "", resource: "pods", verb: "list" },
  { group: "", resource: "pods", subresource: "exec", verb: "create", namespace: "some-app" },
  // SecretProviderClasses are the user's: read only.
  ...["create", "update", "patch", "delete", "deletecollection"].map((verb) => ({
    group: "secrets-store.csi.x-k8s.io",
    resource: "secretproviderclasses",
    verb,
    namespace: "some-app",
  })),
  // Pod statuses are garbage-collected with their pods, never deleted by the driver.
  ...["delete", "deletecollection", "patch"].map((verb) => ({
    group: "secrets-store.csi.x-k8s.io",
    resource: "secretproviderclasspodstatuses",
    verb,
    namespace: "some-app",
  })),
  { group: "", resource: "events", verb: "delete", namespace: "some-app" },
  { group: "", resource: "events", verb: "list" },
  { group: "", resource: "configmaps", verb: "get", namespace: "some-app" },
  { group: "", resource: "serviceaccounts", subresource: "token", verb: "create", namespace: "some-app" },
  { group: "", resource: "nodes", verb: "get" },
  { group: "storage.k8s.io", resource: "csidrivers", verb: "get" },
  { group: "rbac.authorization.k8s.io", resource: "clusterroles", verb: "escalate" },
  { group: "", resource: "serviceaccounts", verb: "impersonate" },
];

Deno.test("the driver's ServiceAccount is denied everything beyond its calls: Secret enumeration, deletes, SPC writes, ...", async () => {
  const granted: string[] = [];
  for (const attributes of FORBIDDEN) {
    if (await allowed(attributes)) granted.push(show(attributes));
  }
  assert.deepEqual(granted, [], "allowed by the manifests' RBAC although the driver must not");
});

/** Rules every authenticated account has (system:basic-user, system:discovery, ...), not the driver's. */
const BUILT_IN = new Set([
  "authentication.k8s.io/selfsubjectreviews:create",
  "authorization.k8s.io/selfsubjectaccessreviews:create",
  "authorization.k8s.io/selfsubjectrulesreviews:create",
]);

Deno.test("the rules the API server grants the driver's token in a namespace are exactly API_CALLS: nothing extra", async () => {
  await using ns = await testNamespace(admin);
  // Asked with the driver's own token, as the driver would.
  const review = await driver.post<{
    status: { resourceRules: { verbs: string[]; apiGroups?: string[]; resources?: string[] }[] };
  }>("/apis/authorization.k8s.io/v1/selfsubjectrulesreviews", {
    apiVersion: "authorization.k8s.io/v1",
    kind: "SelfSubjectRulesReview",
    spec: { namespace: ns.name },
  });
  const granted = new Set<string>();
  for (const rule of review.status.resourceRules) {
    for (const group of rule.apiGroups ?? [""]) {
      for (const resource of rule.resources ?? []) {
        for (const verb of rule.verbs) granted.add(`${group}/${resource}:${verb}`);
      }
    }
  }
  const expected = new Set(
    API_CALLS.flatMap((c) => c.verbs.map((verb) => `${c.group}/${c.resource}:${verb}`)),
  );
  const extra = [...granted].filter((g) => !expected.has(g) && !BUILT_IN.has(g)).sort();
  const missing = [...expected].filter((e) => !granted.has(e)).sort();
  assert.deepEqual({ extra, missing }, { extra: [], missing: [] });
});
