/**
 * Standalone SecretProviderClass source: YAML (or JSON) files in a directory, looked up by namespace and
 * name. Used when the driver runs without a cluster (debugging, the demo, tests).
 *
 * Like the API server, which holds one object per namespace/name, a class defined twice is an error
 * rather than resolved by file order. A file that is not valid YAML only fails the classes it would
 * define; its error names the file, line and column, never its text (which may hold parameters).
 */
import { basename } from "node:path";
import { parseAllDocuments } from "yaml";
import { DriverError, GrpcStatus, messageOf, notFound } from "../errors.ts";
import type { SecretProviderClass, SpcSource } from "../volume/ports.ts";
import { isSecretProviderClass, toSecretProviderClass } from "./parse.ts";

const MANIFEST = /\.(ya?ml|json)$/;

/** A SecretProviderClass object as found in a file, not yet checked. */
interface SpcManifest {
  metadata?: { name?: unknown; namespace?: unknown };
}

/** A file's classes, or why it has none. */
interface ParsedFile {
  manifests: SpcManifest[];
  /** One sentence without the file's text; set when the file is not valid YAML. */
  error?: string;
}

async function readText(file: string): Promise<string> {
  try {
    return await Deno.readTextFile(file);
  } catch (err) {
    throw new DriverError(GrpcStatus.FAILED_PRECONDITION, `cannot read ${file}: ${messageOf(err)}`);
  }
}

/**
 * Every SecretProviderClass object in a (multi-document) file, or the file's first YAML error. The `yaml`
 * library's messages quote the text (a snippet after the first line, a token after a colon in some): only
 * the kind of error and its position are kept.
 */
function parseFile(file: string, text: string): ParsedFile {
  const manifests: SpcManifest[] = [];
  for (const doc of parseAllDocuments(text)) {
    const [first] = doc.errors;
    if (first) {
      const what = first.message.split("\n")[0].replace(/ at line \d+, column \d+:?$/, "").split(": ")[0];
      const at = first.linePos ? ` at line ${first.linePos[0].line}, column ${first.linePos[0].col}` : "";
      return { manifests: [], error: `${file} is not valid YAML: ${what}${at}` };
    }
    const obj = doc.toJS();
    if (isSecretProviderClass(obj)) manifests.push(obj);
  }
  return { manifests };
}

/** Every SecretProviderClass object in a (multi-document) YAML file; other kinds are ignored. */
export async function readSpcManifests(file: string): Promise<SpcManifest[]> {
  const parsed = parseFile(file, await readText(file));
  if (parsed.error) throw new DriverError(GrpcStatus.INVALID_ARGUMENT, parsed.error);
  return parsed.manifests;
}

const namespaceOf = (m: SpcManifest) => (m.metadata?.namespace ?? "default") || "default";

/**
 * Reads the directory on each lookup, so edits apply to the next publish without a restart; a file is
 * parsed again only when its text changed (parsing YAML costs far more than reading the file).
 */
export class SpcDirectory implements SpcSource {
  readonly #parsed = new Map<string, { text: string; parsed: ParsedFile }>();

  constructor(private readonly dir: string) {}

  async get(namespace: string, name: string): Promise<SecretProviderClass> {
    const found: { file: string; manifest: SpcManifest }[] = [];
    const broken: string[] = [];
    for (const file of await this.#files()) {
      const parsed = await this.#parse(file);
      if (parsed.error) broken.push(parsed.error);
      for (const manifest of parsed.manifests) {
        if (manifest.metadata?.name === name && namespaceOf(manifest) === namespace) {
          found.push({ file, manifest });
        }
      }
    }
    const ref = `secretproviderclass ${namespace}/${name}`;
    if (found.length > 1) {
      throw new DriverError(
        GrpcStatus.FAILED_PRECONDITION,
        `${ref} is defined ${found.length} times in ${this.dir} (${
          found.map((f) => basename(f.file)).join(", ")
        }): keep one definition`,
      );
    }
    if (found.length === 1) return toSecretProviderClass(found[0].manifest, found[0].file);
    const unreadable = broken.length > 0
      ? `; it may be in a file that cannot be read: ${broken.join("; ")}`
      : "";
    throw notFound(`${ref} not found in ${this.dir}${unreadable}`);
  }

  async #parse(file: string): Promise<ParsedFile> {
    const text = await readText(file);
    const cached = this.#parsed.get(file);
    if (cached?.text === text) return cached.parsed;
    const parsed = parseFile(file, text);
    this.#parsed.set(file, { text, parsed });
    return parsed;
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
