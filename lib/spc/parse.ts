/**
 * SecretProviderClass objects (secrets-store.csi.x-k8s.io v1 and v1alpha1) reduced to what the driver
 * uses, with the checks upstream makes at publish time.
 */
import { invalidArgument } from "../errors.ts";
import { isRecord } from "../json.ts";
import type { SecretProviderClass } from "../volume/ports.ts";

export const SPC_GROUP = "secrets-store.csi.x-k8s.io";
export const SPC_VERSIONS = ["v1", "v1alpha1"] as const;

/** True when `obj` is a SecretProviderClass of a served version. */
export function isSecretProviderClass(obj: unknown): boolean {
  return isRecord(obj) && obj.kind === "SecretProviderClass" &&
    SPC_VERSIONS.some((v) => obj.apiVersion === `${SPC_GROUP}/${v}`);
}

/**
 * Converts a SecretProviderClass object into the driver's view. `where` names the object's origin in
 * error messages. Upstream's publish-time checks apply: provider and parameters must be set.
 */
export function toSecretProviderClass(obj: unknown, where: string): SecretProviderClass {
  if (!isRecord(obj) || !isSecretProviderClass(obj)) {
    throw invalidArgument(`${where} is not a ${SPC_GROUP} SecretProviderClass (v1 or v1alpha1)`);
  }
  const meta = isRecord(obj.metadata) ? obj.metadata : {};
  const spec = isRecord(obj.spec) ? obj.spec : {};
  const name = typeof meta.name === "string" ? meta.name : "";
  const namespace = typeof meta.namespace === "string" && meta.namespace !== "" ? meta.namespace : "default";
  const ref = `SecretProviderClass ${namespace}/${name}`;
  if (name === "") throw invalidArgument(`${where}: a SecretProviderClass has no metadata.name`);
  const provider = typeof spec.provider === "string" ? spec.provider : "";
  if (provider === "") throw invalidArgument(`provider not set in ${ref}`);
  const parameters: Record<string, string> = {};
  if (spec.parameters !== undefined && !isRecord(spec.parameters)) {
    throw invalidArgument(`spec.parameters of ${ref} must be a map of strings`);
  }
  for (const [key, value] of Object.entries(spec.parameters ?? {})) {
    if (typeof value !== "string") {
      throw invalidArgument(`spec.parameters.${key} of ${ref} must be a string (quote it in YAML)`);
    }
    parameters[key] = value;
  }
  if (Object.keys(parameters).length === 0) throw invalidArgument(`parameters not set in ${ref}`);
  const secretObjects = Array.isArray(spec.secretObjects) ? spec.secretObjects : [];
  return { name, namespace, provider, parameters, secretObjects };
}
