/**
 * The `--endpoint` flag: which unix socket the CSI server listens on, and getting that path ready to bind.
 */
import { dirname } from "node:path";

const UNIX_SCHEME = "unix://";

/**
 * Turns `unix:///csi/csi.sock` into `/csi/csi.sock`.
 *
 * Like upstream, the part after `unix://` is always rooted: `unix://csi/csi.sock` is `/csi/csi.sock` too
 * (the form the csi-common drivers use), so both spellings seen in manifests reach the same socket. The
 * scheme is matched case-insensitively, as upstream does. TCP endpoints are refused: kubelet only dials
 * unix sockets.
 */
export function parseEndpoint(endpoint: string): string {
  if (!endpoint.toLowerCase().startsWith(UNIX_SCHEME)) {
    throw new Error(
      `invalid --endpoint ${JSON.stringify(endpoint)}: expected a unix socket such as unix:///csi/csi.sock`,
    );
  }
  const rest = endpoint.slice(UNIX_SCHEME.length);
  if (rest.replaceAll("/", "") === "") {
    throw new Error(`invalid --endpoint ${JSON.stringify(endpoint)}: the socket path is empty`);
  }
  return rest.startsWith("/") ? rest : `/${rest}`;
}

/**
 * Makes `socketPath` bindable: creates its parent directory, removes a socket left behind by an earlier run
 * (a crash leaves the file and bind would fail with EADDRINUSE), and refuses to touch anything that is not a
 * socket, so a mistyped `--endpoint` cannot delete a regular file or a directory.
 */
export async function prepareSocketPath(socketPath: string): Promise<void> {
  await Deno.mkdir(dirname(socketPath), { recursive: true, mode: 0o750 });
  let info: Deno.FileInfo;
  try {
    info = await Deno.lstat(socketPath);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return;
    throw err;
  }
  if (!info.isSocket) {
    throw new Error(
      `cannot listen on ${socketPath}: it exists and is not a socket; remove it or choose another --endpoint`,
    );
  }
  await Deno.remove(socketPath);
}

/** Removes the socket file; success when it is already gone. */
export async function removeSocket(socketPath: string): Promise<void> {
  try {
    await Deno.remove(socketPath);
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) throw err;
  }
}
