/** Getting a unix socket path ready to bind, and removing it afterwards (CSI and provider servers). */
import { dirname } from "node:path";

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
      `cannot listen on ${socketPath}: it exists and is not a socket; remove it or choose another path`,
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

/** True while something accepts connections on the unix socket `path`. */
export async function acceptsConnections(path: string): Promise<boolean> {
  try {
    (await Deno.connect({ transport: "unix", path })).close();
    return true;
  } catch {
    return false;
  }
}

/**
 * Polls until something accepts connections on `path`. The socket file alone is not enough: it appears at
 * bind(2), before listen(2), and a client connecting in between is refused. Resolves false after
 * `timeoutMs`, or as soon as `gaveUp()` is true (say, the process that should listen has exited).
 */
export async function waitUntilListening(
  path: string,
  timeoutMs: number,
  gaveUp: () => boolean = () => false,
): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline && !gaveUp()) {
    if (await acceptsConnections(path)) return true;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  return false;
}
