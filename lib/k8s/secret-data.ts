/**
 * One `spec.secretObjects[]` entry of a SecretProviderClass turned into the Secret it asks for, from the
 * files mounted in the pod: upstream's checks (secretName, type and data set; every data entry names a
 * mounted object and a key), its type handling (any type string, kubernetes.io/tls split from a PEM
 * bundle) and the managed label. Pure: no API calls, no file reads.
 */
import { isRecord } from "../json.ts";
import type { ProviderFile } from "../volume/ports.ts";
import { tlsPart } from "./tls-pem.ts";

/** The label upstream puts on every Secret it creates, and filters its own watches by. */
export const MANAGED_LABEL = "secrets-store.csi.k8s.io/managed";

/** The Secret types upstream documents (any other string is passed through, as upstream does). */
export const SECRET_TYPES = [
  "Opaque",
  "kubernetes.io/service-account-token",
  "kubernetes.io/dockercfg",
  "kubernetes.io/dockerconfigjson",
  "kubernetes.io/basic-auth",
  "kubernetes.io/ssh-auth",
  "kubernetes.io/tls",
  "bootstrap.kubernetes.io/token",
] as const;

/** Why a secret object cannot be synced; `reason` is the metric's error_type. */
export class SecretObjectError extends Error {
  constructor(
    readonly reason: "InvalidSecretObject" | "SecretObjectNotMounted" | "InvalidTLSData",
    message: string,
  ) {
    super(message);
    this.name = "SecretObjectError";
  }
}

/** The Secret a secret object asks for. */
export interface DesiredSecret {
  name: string;
  type: string;
  labels: Record<string, string>;
  annotations: Record<string, string>;
  /** Key → contents. */
  data: Record<string, Uint8Array>;
}

const str = (v: unknown) => (typeof v === "string" ? v.trim() : "");

function stringMap(v: unknown, field: string, where: string): Record<string, string> {
  if (v === undefined || v === null) return {};
  if (!isRecord(v) || Object.values(v).some((x) => typeof x !== "string")) {
    throw new SecretObjectError("InvalidSecretObject", `${where}: ${field} must be a map of strings`);
  }
  return { ...v } as Record<string, string>;
}

/**
 * Builds the Secret for `secretObjects[index]` of class `spcRef` ("namespace/name") from the mounted
 * `files` (paths relative to the target, as the pod sees them). Throws a SecretObjectError naming the
 * entry and what is wrong.
 */
export function desiredSecret(
  secretObject: unknown,
  index: number,
  spcRef: string,
  files: ProviderFile[],
): DesiredSecret {
  const where = `secretObjects[${index}] of secretproviderclass ${spcRef}`;
  const invalid = (msg: string) => new SecretObjectError("InvalidSecretObject", `${where}: ${msg}`);
  if (!isRecord(secretObject)) throw invalid("is not an object");
  const name = str(secretObject.secretName);
  if (name === "") throw invalid("secretName is empty");
  const type = str(secretObject.type);
  if (type === "") throw invalid(`type is empty (one of ${SECRET_TYPES.join(", ")})`);
  const entries = Array.isArray(secretObject.data) ? secretObject.data : [];
  if (entries.length === 0) throw invalid("data is empty");
  const labels = { ...stringMap(secretObject.labels, "labels", where), [MANAGED_LABEL]: "true" };
  const annotations = stringMap(secretObject.annotations, "annotations", where);

  const mounted = new Map(files.map((f) => [f.path, f.contents]));
  const data: Record<string, Uint8Array> = {};
  entries.forEach((entry, i) => {
    const objectName = isRecord(entry) ? str(entry.objectName) : "";
    const key = isRecord(entry) ? str(entry.key) : "";
    if (objectName === "") throw invalid(`data[${i}].objectName is empty`);
    if (key === "") throw invalid(`data[${i}].key is empty`);
    const contents = mounted.get(objectName);
    if (contents === undefined) {
      throw new SecretObjectError(
        "SecretObjectNotMounted",
        `${where}: file matching objectName ${objectName} not found in the pod (secret ${name}, key ${key})`,
      );
    }
    if (type !== "kubernetes.io/tls") {
      data[key] = contents;
      return;
    }
    try {
      data[key] = tlsPart(contents, key);
    } catch (err) {
      throw new SecretObjectError(
        "InvalidTLSData",
        `${where}: cannot build ${key} of kubernetes.io/tls secret ${name} from ${objectName}: ${
          (err as Error).message
        }`,
      );
    }
  });
  return { name, type, labels, annotations, data };
}
