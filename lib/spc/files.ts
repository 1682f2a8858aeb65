/**
 * Standalone SecretProviderClass source: YAML (or JSON) files in a directory, looked up by namespace and
 * name. Used when the driver runs without a cluster (debugging, the demo, tests).
 */
import { parseAllDocuments } from "yaml";
import { DriverError, GrpcStatus, messageOf, notFound } from "../errors.ts";
import type { SecretProviderClass, SpcSource } from "../volume/ports.ts";
import { isSecretProviderClass, toSecretProviderClass } from "./parse.ts";

const MANIFEST = /\.(ya?ml|json)$/;

/** A SecretProviderClass object as found in a file, not yet checked. */
interface SpcManifest {
  metadata?: { name?: unknown; namespace?: unknown };
}

async function readText(file: string): Promise<string> {
  try {
    return await Deno.readTextFile(file);
  } catch (err) {
    throw new DriverError(GrpcStatus.FAILED_PRECONDITION, `cannot read ${file}: ${messageOf(err)}`);
  }
}

/** Every SecretProviderClass object in a (multi-document) YAML file; other kinds are ignored. */
export async function readSpcManifests(file: string): Promise<SpcManifest[]> {
  return parseSpcManifests(file, await readText(file));
}

function parseSpcManifests(file: string, text: string): SpcManifest[] {
  const found: SpcManifest[] = [];
  for (const doc of parseAllDocuments(text)) {
    if (doc.errors.length > 0) {
      throw new DriverError(
        GrpcStatus.INVALID_ARGUMENT,
        `${file} is not valid YAML: ${doc.errors[0].message}`,
      );
    }
    const obj = doc.toJS();
    if (isSecretProviderClass(obj)) found.push(obj);
  }
  return found;
}

/**
 * Reads the directory on each lookup, so edits apply to the next publish without a restart; a file is
 * parsed again only when its text changed (parsing YAML costs far more than reading the file).
 */
export class SpcDirectory implements SpcSource {
  readonly #parsed = new Map<string, { text: string; manifests: SpcManifest[] }>();

  constructor(private readonly dir: string) {}

  async get(namespace: string, name: string): Promise<SecretProviderClass> {
    for (const file of await this.#files()) {
      const match = (await this.#manifests(file)).find((m) =>
        m.metadata?.name === name && (m.metadata?.namespace ?? "default") === namespace
      );
      if (match) return toSecretProviderClass(match, file);
    }
    throw notFound(`secretproviderclass ${namespace}/${name} not found in ${this.dir}`);
  }

  async #manifests(file: string): Promise<SpcManifest[]> {
    const text = await readText(file);
    const cached = this.#parsed.get(file);
    if (cached?.text === text) return cached.manifests;
    const manifests = parseSpcManifests(file, text);
    this.#parsed.set(file, { text, manifests });
    return manifests;
  }

  async #files(): Promise<string[]> {
    const files: string[] = [];
    try {
      for await (const entry of Deno.readDir(this.dir)) {
        if (entry.isFile && MANIFEST.test(entry.name)) files.push(`${this.dir}/${entry.name}`);
      }
    } catch (err) {
      throw new DriverError(
        GrpcStatus.FAILED_PRECONDITION,
        `cannot read --spc-dir ${this.dir}: ${messageOf(err)}`,
      );
    }
    for (const file of this.#parsed.keys()) if (!files.includes(file)) this.#parsed.delete(file);
    return files.sort();
  }
}
