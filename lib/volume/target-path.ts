/**
 * Checks on the target path kubelet hands us. The driver runs as root in a privileged pod with the host's
 * kubelet directory mounted, so a path that would mount tmpfs over system directories must be refused
 * before anything touches the filesystem.
 */
import { invalidArgument } from "../errors.ts";

/** Directories (and everything below them) a target path may never be in. */
const FORBIDDEN_ROOTS = ["/proc", "/sys", "/dev", "/boot", "/etc", "/usr", "/bin", "/sbin", "/lib", "/lib64"];

/** Returns the target path if acceptable; otherwise throws INVALID_ARGUMENT with the reason. */
export function checkTargetPath(path: string): string {
  if (!path.startsWith("/")) throw invalidArgument(`target path ${JSON.stringify(path)} is not absolute`);
  if (path.includes("\0")) throw invalidArgument("target path contains a NUL byte");
  const parts = path.split("/");
  if (parts.some((p) => p === "..")) {
    throw invalidArgument(`target path ${JSON.stringify(path)} contains a ".." element`);
  }
  const clean = "/" + parts.filter((p) => p !== "" && p !== ".").join("/");
  if (clean === "/") throw invalidArgument("target path / is refused: the driver never mounts over the root");
  const forbidden = FORBIDDEN_ROOTS.find((root) => clean === root || clean.startsWith(root + "/"));
  if (forbidden) {
    throw invalidArgument(
      `target path ${JSON.stringify(path)} is under ${forbidden}, which the driver never mounts on`,
    );
  }
  return clean;
}
