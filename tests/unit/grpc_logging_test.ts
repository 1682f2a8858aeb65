/** grpc-js's own log lines go through the driver's logger instead of raw to stderr. */
import assert from "node:assert/strict";
import * as grpc from "@grpc/grpc-js";
import { routeGrpcLogs } from "../../lib/grpc-logging.ts";
import { createLogger } from "../../lib/log.ts";

Deno.test("grpc-js's errors become driver log lines; its info lines only from -v=5", () => {
  const lines: string[] = [];
  const capture = (verbosity: number) =>
    routeGrpcLogs(createLogger({ json: true, verbosity, sink: (l) => lines.push(l) }), verbosity);
  try {
    capture(0);
    grpc.experimental.log(grpc.logVerbosity.ERROR, "No address added out of total %d resolved", 1);
    grpc.experimental.log(grpc.logVerbosity.INFO, "subchannel connecting");
    capture(5);
    grpc.experimental.log(grpc.logVerbosity.INFO, "subchannel connecting");
    const entries = lines.map((l) => JSON.parse(l));
    assert.deepEqual(entries.map((e) => [e.level, e.message, e.component]), [
      ["error", "No address added out of total 1 resolved", "grpc-js"],
      ["info", "subchannel connecting", "grpc-js"],
    ]);
  } finally {
    grpc.setLogger(console);
    grpc.setLogVerbosity(grpc.logVerbosity.ERROR);
  }
});
