/**
 * The bench's cluster: the API stand-in (tests/support/apiserver.ts) serving the bench's
 * SecretProviderClasses, optionally `filler` more shaped like a production cluster's (five Key Vault
 * objects, two synced Secrets, kubectl's last-applied annotation and managedFields: ~3.5 KB of JSON each),
 * and a kubeconfig for the driver's `--kubeconfig`.
 */
import { join } from "node:path";
import { type ApiServer, startApiServer } from "../tests/support/apiserver.ts";
import { benchSpcObjects, type World } from "./fixture.ts";

/** A running stand-in and the `node` flags that point a driver at it. */
export interface BenchCluster {
  api: ApiServer;
  /** `--kubeconfig FILE`, replacing the world's `--spc-dir`. */
  source: string[];
  close(): Promise<void>;
}

/** A SecretProviderClass as clusters hold them: namespace `team-<i % 50>`. */
export function fillerSpc(i: number) {
  const name = `app-${i}-keyvault`;
  const namespace = `team-${i % 50}`;
  const objects = Array.from(
    { length: 5 },
    (_, k) =>
      `      - |\n        objectName: app-${i}-secret-${k}\n        objectType: secret\n        objectVersion: ""`,
  )
    .join("\n");
  const spec = {
    provider: "azure",
    parameters: {
      usePodIdentity: "false",
      clientID: `00000000-0000-0000-0000-${String(i).padStart(12, "0")}`,
      keyvaultName: `kv-team-${i % 50}`,
      tenantId: "11111111-2222-3333-4444-555555555555",
      objects: `array:\n${objects}\n`,
    },
    secretObjects: [0, 1].map((k) => ({
      secretName: `app-${i}-secret-${k}`,
      type: "Opaque",
      data: [{ objectName: `app-${i}-secret-${k}`, key: "value" }],
    })),
  };
  const applied = {
    apiVersion: "secrets-store.csi.x-k8s.io/v1",
    kind: "SecretProviderClass",
    metadata: { name, namespace },
    spec,
  };
  return {
    ...applied,
    metadata: {
      name,
      namespace,
      annotations: { "kubectl.kubernetes.io/last-applied-configuration": JSON.stringify(applied) },
      managedFields: [{
        apiVersion: "secrets-store.csi.x-k8s.io/v1",
        fieldsType: "FieldsV1",
        fieldsV1: { "f:spec": { ".": {}, "f:parameters": { ".": {}, "f:objects": {} }, "f:provider": {} } },
        manager: "kubectl-client-side-apply",
        operation: "Update",
        time: "2026-11-01T00:00:00Z",
      }],
    },
  };
}

/** Starts the stand-in with the bench's classes and `filler` more. */
export async function startBenchCluster(world: World, filler = 0): Promise<BenchCluster> {
  const api = await startApiServer();
  for (const spc of benchSpcObjects()) api.put(spc);
  for (let i = 0; i < filler; i++) api.put(fillerSpc(i));
  const kubeconfig = join(world.dir, `kubeconfig-${api.port}.yaml`);
  await Deno.writeTextFile(kubeconfig, api.kubeconfig());
  return {
    api,
    source: ["--kubeconfig", kubeconfig],
    close: async () => {
      await api.close();
      await Deno.remove(kubeconfig).catch(() => {});
    },
  };
}
