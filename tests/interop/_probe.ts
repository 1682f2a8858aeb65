import { ProviderClient } from "../../lib/provider/client.ts";
import { silentLogger } from "../../lib/log.ts";
const c = new ProviderClient({ dirs: ["/tmp/tmp.r6Xzrfza17"], driverVersion: "x", log: silentLogger, retry: { attempts: 1, initialMs: 1, maxMs: 1 } });
try { console.log(await c.version("gostandin", 3000)); } catch (e) { console.log("ERR", e.message); }
c.close();
