/** The `--endpoint` flag: which unix socket the CSI server listens on. */

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
