/** Tearing down a published volume: unmount the tmpfs, then remove the target directory. */
import type { Mounter, Target } from "./ports.ts";

/**
 * Unmounts the driver's tmpfs from `target` (a no-op when nothing is mounted) and removes the directory.
 * Not recursive: once the tmpfs is gone the directory is empty unless something else was put there, and
 * a privileged driver must not delete what it did not create. Succeeds when the directory is already
 * gone, so kubelet's retries of an unpublish always converge.
 */
export async function removeVolume(target: Target, mounter: Mounter): Promise<void> {
  await mounter.unmount(target);
  await mounter.remove(target);
}
