/**
 * Routes grpc-js's own log lines (e.g. `E No address added out of total 1 resolved`) through the driver's
 * logger, so stderr holds only klog or JSON lines. grpc-js logs errors by default; `-v=5` and above adds
 * its info lines. GRPC_VERBOSITY / GRPC_NODE_VERBOSITY, when set, keep their meaning.
 */
import * as grpc from "@grpc/grpc-js";
import { format } from "node:util";
import type { Logger } from "./log.ts";

/** From -v on, grpc-js's info lines are logged too. */
const GRPC_INFO_VERBOSITY = 5;

/** Makes `log` grpc-js's logger for the rest of the process. */
export function routeGrpcLogs(log: Logger, verbosity: number): void {
  const from = log.with({ component: "grpc-js" });
  const text = (args: unknown[]) => format(...args);
  grpc.setLogger({
    error: (...args: unknown[]) => from.error(text(args)),
    info: (...args: unknown[]) => from.info(text(args)),
    debug: (...args: unknown[]) => from.info(text(args), {}, GRPC_INFO_VERBOSITY + 1),
  });
  if (!Deno.env.get("GRPC_VERBOSITY") && !Deno.env.get("GRPC_NODE_VERBOSITY")) {
    grpc.setLogVerbosity(
      verbosity >= GRPC_INFO_VERBOSITY ? grpc.logVerbosity.INFO : grpc.logVerbosity.ERROR,
    );
  }
}
