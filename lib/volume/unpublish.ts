/** Tearing down a published volume: unmount the tmpfs, then remove the target directory. */
import { DriverError, GrpcStatus, messageOf } from "../errors.ts";
import type { Mounter } from "./ports.ts";

/**
 * Unmounts `target` (a no-op when it is not mounted) and removes the directory. Succeeds when the path
 * does not exist, so kubelet's retries of an unpublish always converge.
 */
export async function removeVolume(target: string, mounter: Mounter): Promise<void> {
  await mounter.unmount(target);
  try {
    // Not recursive: once the tmpfs is gone the directory is empty unless something else was put there,
    // and a privileged driver must not delete what it did not create.
    await Deno.remove(target);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return;
    throw new DriverError(GrpcStatus.INTERNAL, `failed to remove target path ${target}: ${messageOf(err)}`);
  }
}
