/** `provider local`: the embedded provider that serves files from a directory. */
import type { ProviderLocalConfig } from "../config.ts";
import { routeGrpcLogs } from "../grpc-logging.ts";
import { createLogger } from "../log.ts";
import { serveLocalProvider } from "../provider/local.ts";
import { untilTerminated } from "./signals.ts";

/** Serves `<socketDir>/local.sock` until SIGTERM/SIGINT; resolves with the exit code. */
export async function runProviderLocal(config: ProviderLocalConfig): Promise<number> {
  const log = createLogger(config.logging);
  routeGrpcLogs(log, config.logging.verbosity);
  const server = await serveLocalProvider({ socketDir: config.socketDir, root: config.root, log });
  await untilTerminated();
  await server.close();
  return 0;
}
