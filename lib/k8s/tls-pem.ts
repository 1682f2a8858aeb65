/**
 * Splits a PEM bundle into the two halves of a kubernetes.io/tls Secret, as upstream's secretutil does:
 * `tls.crt` is every CERTIFICATE block, re-encoded in order; `tls.key` is the last other block, as PKCS#1
 * (`RSA PRIVATE KEY`) for RSA keys and SEC 1 (`EC PRIVATE KEY`) for EC keys, PKCS#8 input unwrapped.
 * Not supported (upstream reads them with Go's pkcs12): PFX bundles; they get a clear error.
 */

/** One decoded PEM block. */
export interface PemBlock {
  type: string;
  headers: [string, string][];
  bytes: Uint8Array;
}

const BLOCK = /-----BEGIN ([^\r\n-]+)-----\r?\n([\s\S]*?)-----END \1-----/g;

/** Every well-formed block, in order; malformed ones are skipped as Go's pem.Decode skips them. */
export function decodePem(text: string): PemBlock[] {
  const blocks: PemBlock[] = [];
  for (const match of text.matchAll(BLOCK)) {
    let body = match[2];
    const headers: [string, string][] = [];
    const split = body.match(/^((?:[^\r\n:]+:[^\r\n]*\r?\n)+)\r?\n/);
    if (split) {
      for (const line of split[1].split(/\r?\n/).filter((l) => l !== "")) {
        const colon = line.indexOf(":");
        headers.push([line.slice(0, colon).trim(), line.slice(colon + 1).trim()]);
      }
      body = body.slice(split[0].length);
    }
    try {
      const bytes = Uint8Array.from(atob(body.replace(/\s+/g, "")), (c) => c.charCodeAt(0));
      blocks.push({ type: match[1], headers, bytes });
    } catch {
      // not base64: not a block
    }
  }
  return blocks;
}

/** Go's pem.EncodeToMemory: headers (Proc-Type first), a blank line, base64 in 64-column lines. */
export function encodePem(block: PemBlock): string {
  let out = `-----BEGIN ${block.type}-----\n`;
  if (block.headers.length > 0) {
    const sorted = [...block.headers].sort(([a], [b]) =>
      a === "Proc-Type" ? -1 : b === "Proc-Type" ? 1 : a < b ? -1 : a > b ? 1 : 0
    );
    for (const [k, v] of sorted) out += `${k}: ${v}\n`;
    out += "\n";
  }
  let b64 = "";
  for (let i = 0; i < block.bytes.length; i += 0x8000) {
    b64 += String.fromCharCode(...block.bytes.subarray(i, i + 0x8000));
  }
  b64 = btoa(b64);
  for (let i = 0; i < b64.length; i += 64) out += b64.slice(i, i + 64) + "\n";
  return out + `-----END ${block.type}-----\n`;
}

// ---- a minimal DER reader: enough to unwrap PKCS#8 ----

interface Der {
  tag: number;
  /** The content octets. */
  value: Uint8Array;
  /** The whole element, header included. */
  raw: Uint8Array;
}

function readDer(bytes: Uint8Array, offset = 0): Der {
  const tag = bytes[offset];
  let length = bytes[offset + 1];
  let header = 2;
  if (length & 0x80) {
    const count = length & 0x7f;
    if (count === 0 || count > 4) throw new Error("unsupported DER length");
    length = 0;
    for (let i = 0; i < count; i++) length = length * 256 + bytes[offset + 2 + i];
    header += count;
  }
  const end = offset + header + length;
  if (tag === undefined || end > bytes.length) throw new Error("truncated DER");
  return { tag, value: bytes.subarray(offset + header, end), raw: bytes.subarray(offset, end) };
}

function children(sequence: Der): Der[] {
  const out: Der[] = [];
  for (let offset = 0; offset < sequence.value.length;) {
    const child = readDer(sequence.value, offset);
    out.push(child);
    offset += child.raw.length;
  }
  return out;
}

function derLength(n: number): number[] {
  if (n < 0x80) return [n];
  const bytes: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v & 0xff);
  return [0x80 | bytes.length, ...bytes];
}

function der(tag: number, ...parts: Uint8Array[]): Uint8Array {
  const length = parts.reduce((n, p) => n + p.length, 0);
  const out = new Uint8Array([tag, ...derLength(length), ...parts.flatMap((p) => [...p])]);
  return out;
}

const OID_RSA = "2a864886f70d010101"; // 1.2.840.113549.1.1.1
const OID_EC = "2a8648ce3d0201"; // 1.2.840.10045.2.1
const hex = (b: Uint8Array) => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");

/**
 * A PKCS#8 PrivateKeyInfo turned into the traditional form Go's MarshalPKCS1PrivateKey /
 * MarshalECPrivateKey produce; undefined when `bytes` is not PKCS#8 RSA or EC.
 */
function fromPkcs8(bytes: Uint8Array): PemBlock | undefined {
  let fields: Der[];
  try {
    const info = readDer(bytes);
    if (info.tag !== 0x30 || info.raw.length !== bytes.length) return undefined;
    fields = children(info);
  } catch {
    return undefined;
  }
  const [version, algorithm, key] = fields;
  if (version?.tag !== 0x02 || algorithm?.tag !== 0x30 || key?.tag !== 0x04) return undefined;
  const [oid, params] = children(algorithm);
  if (hex(oid.value) === OID_RSA) return { type: "RSA PRIVATE KEY", headers: [], bytes: key.value.slice() };
  if (hex(oid.value) !== OID_EC || params?.tag !== 0x06) return undefined;
  // The inner ECPrivateKey usually leaves the curve out (it is in the algorithm); Go writes it as [0].
  const ec = children(readDer(key.value));
  const hasCurve = ec.some((f) => f.tag === 0xa0);
  const parts = hasCurve
    ? ec.map((f) => f.raw)
    : [ec[0].raw, ec[1].raw, der(0xa0, params.raw), ...ec.slice(2).map((f) => f.raw)];
  return { type: "EC PRIVATE KEY", headers: [], bytes: der(0x30, ...parts) };
}

/** The certificates of a bundle, for `tls.crt`. */
export function certificatePart(pem: Uint8Array): Uint8Array {
  const blocks = decodePem(new TextDecoder().decode(pem)).filter((b) => b.type === "CERTIFICATE");
  if (blocks.length === 0) {
    throw new Error("it holds no PEM CERTIFICATE block (PFX bundles are not supported)");
  }
  return new TextEncoder().encode(blocks.map(encodePem).join(""));
}

/** The private key of a bundle, for `tls.key`. */
export function privateKeyPart(pem: Uint8Array): Uint8Array {
  const keys = decodePem(new TextDecoder().decode(pem)).filter((b) => b.type !== "CERTIFICATE");
  if (keys.length === 0) throw new Error("it holds no PEM private key block (PFX bundles are not supported)");
  const last = keys[keys.length - 1];
  // PKCS#1 and SEC 1 keys are already in the form Go re-marshals them to.
  const block = fromPkcs8(last.bytes) ??
    (last.type === "RSA PRIVATE KEY" || last.type === "EC PRIVATE KEY"
      ? { ...last, headers: [] }
      : undefined);
  if (block === undefined) {
    throw new Error(`its ${last.type} block is not an RSA or EC private key (PKCS#1, PKCS#8 or SEC 1)`);
  }
  return new TextEncoder().encode(encodePem(block));
}

/** `tls.crt` or `tls.key` of a PEM bundle; any other key is an error, as upstream. */
export function tlsPart(pem: Uint8Array, key: string): Uint8Array {
  if (key === "tls.crt") return certificatePart(pem);
  if (key === "tls.key") return privateKeyPart(pem);
  throw new Error(`key '${key}' is not supported. Only 'tls.key' and 'tls.crt' are supported`);
}
