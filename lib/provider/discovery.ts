/**
 * Finds a provider plugin's unix socket: `<dir>/<provider>.sock` in the first of the configured
 * directories that has one. Upstream's order is `--additional-provider-volume-paths`, then
 * `--provider-volume` (its main.go appends the latter to the list); lib/config.ts builds that list.
 */
import { join } from "node:path";
import { DriverError, GrpcStatus, invalidArgument, messageOf } from "../errors.ts";

/** Upstream's provider name rule; it admits the empty name, which we reject separately. */
const PROVIDER_NAME = /^[a-zA-Z0-9_-]{0,30}$/;

/** True when `name` can name a provider socket. */
export function isValidProviderName(name: string): boolean {
  return name !== "" && PROVIDER_NAME.test(name);
}

/** Throws INVALID_ARGUMENT unless `name` can name a provider socket. */
export function validateProviderName(name: string): void {
  if (name === "") {
    throw invalidArgument("spec.provider is empty: the SecretProviderClass must name a provider");
  }
  if (!PROVIDER_NAME.test(name)) {
    throw invalidArgument(
      `invalid provider name ${
        JSON.stringify(name)
      }: it must be 1 to 30 characters of letters, digits, '_' or '-'`,
    );
  }
}

/** The socket file name a provider listens on. */
export function providerSocketName(name: string): string {
  return `${name}.sock`;
}

/**
 * The path of provider `name`'s socket in the first of `dirs` that has one.
 *
 * Not found is UNAVAILABLE rather than NOT_FOUND: the usual cause is a provider DaemonSet pod that is
 * still starting on this node, and kubelet retries NodePublishVolume, so the mount heals on its own.
 */
export async function findProviderSocket(name: string, dirs: string[]): Promise<string> {
  validateProviderName(name);
  const socketName = providerSocketName(name);
  const missingIn: string[] = [];
  const problems: string[] = [];
  for (const dir of dirs) {
    const path = join(dir, socketName);
    try {
      // stat, not lstat: a symlink to a socket is fine (upstream uses os.Stat too).
      const info = await Deno.stat(path);
      if (info.isSocket) return path;
      problems.push(`${path} exists but is not a socket`);
    } catch (err) {
      if (err instanceof Deno.errors.NotFound) missingIn.push(dir);
      else problems.push(`${path} cannot be checked: ${messageOf(err)}`);
    }
  }
  const searched = missingIn.length > 0 ? `no ${socketName} in ${missingIn.join(", ")}` : "";
  const details = [searched, ...problems].filter((s) => s !== "").join("; ") ||
    "no provider directories are configured";
  throw new DriverError(
    GrpcStatus.UNAVAILABLE,
    `provider ${
      JSON.stringify(name)
    } not found: ${details}; is the provider's DaemonSet running on this node?`,
  );
}
