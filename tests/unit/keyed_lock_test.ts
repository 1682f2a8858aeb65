import assert from "node:assert/strict";
import { KeyedLock } from "../../lib/volume/keyed-lock.ts";

const tick = () => new Promise((r) => setTimeout(r, 1));

Deno.test("calls with one key run one at a time, in order, even when some fail", async () => {
  const lock = new KeyedLock();
  const events: string[] = [];
  const job = (name: string, fail = false) => async () => {
    events.push(`start ${name}`);
    await tick();
    events.push(`end ${name}`);
    if (fail) throw new Error(name);
    return name;
  };
  const results = await Promise.allSettled([
    lock.run("k", job("a")),
    lock.run("k", job("b", true)),
    lock.run("k", job("c")),
  ]);
  assert.deepEqual(events, ["start a", "end a", "start b", "end b", "start c", "end c"]);
  assert.deepEqual(results.map((r) => r.status), ["fulfilled", "rejected", "fulfilled"]);
  await tick();
  assert.equal(lock.size, 0, "finished keys are forgotten");
});

Deno.test("different keys run in parallel", async () => {
  const lock = new KeyedLock();
  let running = 0;
  let peak = 0;
  const job = async () => {
    peak = Math.max(peak, ++running);
    await tick();
    running--;
  };
  await Promise.all(["a", "b", "c"].map((k) => lock.run(k, job)));
  assert.equal(peak, 3);
});
