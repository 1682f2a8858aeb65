import { goPeers } from "../support/go-peers.ts";
const t0 = performance.now();
const p = await goPeers();
console.log(p, Math.round(performance.now() - t0), "ms");
