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
