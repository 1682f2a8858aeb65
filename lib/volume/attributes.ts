/**
 * The strings sent in MountRequest, built byte for byte as upstream builds them with Go's json.Marshal:
 * map keys sorted, and `<`, `>`, `&`, U+2028, U+2029 escaped as \u sequences.
 */
import type { PublishRequest, SecretProviderClass } from "./ports.ts";

/** Volume context keys kubelet sets (podInfoOnMount, tokenRequests). */
export const CONTEXT = {
  spc: "secretProviderClass",
  podName: "csi.storage.k8s.io/pod.name",
  podNamespace: "csi.storage.k8s.io/pod.namespace",
  podUid: "csi.storage.k8s.io/pod.uid",
  serviceAccount: "csi.storage.k8s.io/serviceAccount.name",
  tokens: "csi.storage.k8s.io/serviceAccount.tokens",
  ephemeral: "csi.storage.k8s.io/ephemeral",
} as const;

/** json.Marshal(os.FileMode(0644)): upstream sends the default file permission as a decimal number. */
export const FILE_PERMISSION = "420";

const GO_ESCAPES: Record<string, string> = {
  "<": "\\u003c",
  ">": "\\u003e",
  "&": "\\u0026",
  "\u2028": "\\u2028",
  "\u2029": "\\u2029",
};

const utf8 = new TextEncoder();

/** Go orders map keys by their UTF-8 bytes; JavaScript's sort() uses UTF-16 code units, which differs above U+E000. */
function byUtf8Bytes(a: string, b: string): number {
  const x = utf8.encode(a);
  const y = utf8.encode(b);
  for (let i = 0; i < Math.min(x.length, y.length); i++) if (x[i] !== y[i]) return x[i] - y[i];
  return x.length - y.length;
}

/** Go's json.Marshal of a map[string]string. */
export function goJsonStringMap(map: Record<string, string>): string {
  const sorted = Object.keys(map).sort(byUtf8Bytes).map((k) =>
    `${JSON.stringify(k)}:${JSON.stringify(map[k])}`
  );
  return `{${sorted.join(",")}}`.replace(/[<>&\u2028\u2029]/g, (c) => GO_ESCAPES[c]);
}

/**
 * Attributes: the SPC's parameters overlaid with every volume attribute kubelet sent. Service account
 * tokens may arrive in the request's secrets (newer kubelets) instead of the volume context; secrets win.
 */
export function providerAttributes(spc: SecretProviderClass, request: PublishRequest): string {
  const attributes: Record<string, string> = { ...spc.parameters, ...request.volumeContext };
  const tokens = request.secrets[CONTEXT.tokens];
  if (tokens) attributes[CONTEXT.tokens] = tokens;
  return goJsonStringMap(attributes);
}

/** Secrets: the request's secrets (nodePublishSecretRef data) passed through unchanged. */
export function providerSecrets(request: PublishRequest): string {
  return goJsonStringMap(request.secrets);
}
