/**
 * The test control plane's keys and certificates, made with the openssl command (as "Kubernetes the hard
 * way" does): one CA, the API server's serving certificate, client certificates for the admin, the
 * controller manager and the API server's kubelet client, and the service-account signing key pair.
 * ECDSA P-256 throughout: fast to generate, accepted by every component.
 */
import { join } from "node:path";

/** Paths of everything {@link makePki} writes into its directory. */
export interface Pki {
  dir: string;
  caCert: string;
  caKey: string;
  apiserverCert: string;
  apiserverKey: string;
  adminCert: string;
  adminKey: string;
  controllerManagerCert: string;
  controllerManagerKey: string;
  kubeletClientCert: string;
  kubeletClientKey: string;
  /** Signs service-account tokens (API server and the controller manager's token controller). */
  serviceAccountKey: string;
  serviceAccountPub: string;
}

export function pkiPaths(dir: string): Pki {
  const at = (name: string) => join(dir, name);
  return {
    dir,
    caCert: at("ca.crt"),
    caKey: at("ca.key"),
    apiserverCert: at("apiserver.crt"),
    apiserverKey: at("apiserver.key"),
    adminCert: at("admin.crt"),
    adminKey: at("admin.key"),
    controllerManagerCert: at("controller-manager.crt"),
    controllerManagerKey: at("controller-manager.key"),
    kubeletClientCert: at("apiserver-kubelet-client.crt"),
    kubeletClientKey: at("apiserver-kubelet-client.key"),
    serviceAccountKey: at("sa.key"),
    serviceAccountPub: at("sa.pub"),
  };
}

async function openssl(args: string[]): Promise<void> {
  let output: Deno.CommandOutput;
  try {
    output = await new Deno.Command("openssl", { args, stdin: "null", stdout: "null", stderr: "piped" })
      .output();
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) {
      throw new Error(
        "the openssl command is not installed (Debian package openssl); it makes the cluster's certificates",
      );
    }
    throw err;
  }
  if (output.code !== 0) {
    throw new Error(`openssl ${args[0]} failed: ${new TextDecoder().decode(output.stderr).trim()}`);
  }
}

const EC = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];

/** Issues a certificate signed by the CA for `subject` ("/CN=admin/O=system:masters"). */
async function issue(
  pki: Pki,
  cert: string,
  key: string,
  subject: string,
  extensions: string[],
): Promise<void> {
  const csr = `${cert}.csr`;
  const ext = `${cert}.ext`;
  await openssl(["req", "-new", ...EC, "-keyout", key, "-out", csr, "-subj", subject]);
  await Deno.writeTextFile(ext, extensions.join("\n") + "\n");
  const serial = "0x" + [...crypto.getRandomValues(new Uint8Array(16))]
    .map((b) => b.toString(16).padStart(2, "0")).join("");
  await openssl([
    "x509",
    "-req",
    "-in",
    csr,
    "-CA",
    pki.caCert,
    "-CAkey",
    pki.caKey,
    "-set_serial",
    serial,
    "-days",
    "365",
    "-extfile",
    ext,
    "-out",
    cert,
  ]);
  await Deno.remove(csr);
  await Deno.remove(ext);
}

const CLIENT = [
  "basicConstraints=critical,CA:FALSE",
  "keyUsage=critical,digitalSignature",
  "extendedKeyUsage=clientAuth",
];

/** Makes a fresh CA and every certificate and key of the control plane in `dir`. */
export async function makePki(dir: string): Promise<Pki> {
  await Deno.mkdir(dir, { recursive: true });
  const pki = pkiPaths(dir);
  await openssl([
    "req",
    "-x509",
    "-new",
    ...EC,
    "-keyout",
    pki.caKey,
    "-out",
    pki.caCert,
    "-days",
    "3650",
    "-subj",
    "/CN=secrets-store-csi-test-ca",
    "-addext",
    "basicConstraints=critical,CA:TRUE",
    "-addext",
    "keyUsage=critical,keyCertSign,cRLSign",
  ]);
  await issue(pki, pki.apiserverCert, pki.apiserverKey, "/CN=kube-apiserver", [
    "basicConstraints=critical,CA:FALSE",
    "keyUsage=critical,digitalSignature",
    "extendedKeyUsage=serverAuth",
    "subjectAltName=IP:127.0.0.1,IP:10.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default," +
    "DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local",
  ]);
  await issue(pki, pki.adminCert, pki.adminKey, "/O=system:masters/CN=admin", CLIENT);
  await issue(
    pki,
    pki.controllerManagerCert,
    pki.controllerManagerKey,
    "/CN=system:kube-controller-manager",
    CLIENT,
  );
  await issue(
    pki,
    pki.kubeletClientCert,
    pki.kubeletClientKey,
    "/O=system:masters/CN=kube-apiserver-kubelet-client",
    CLIENT,
  );
  await openssl([
    "genpkey",
    "-algorithm",
    "EC",
    "-pkeyopt",
    "ec_paramgen_curve:P-256",
    "-out",
    pki.serviceAccountKey,
  ]);
  await openssl(["pkey", "-in", pki.serviceAccountKey, "-pubout", "-out", pki.serviceAccountPub]);
  return pki;
}
