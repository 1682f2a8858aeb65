import { World } from "../fixture.ts";
import { benchPublishLatency } from "../publish.ts";
import { benchOptions } from "../options.ts";
const world = await World.create();
try {
  const d = await world.startDriver();
  try {
    const o = benchOptions(false, () => undefined);
    o.runs = 2;
    o.publishCycles = 200;
    console.log(JSON.stringify(await benchPublishLatency(world, d, o), null, 1));
    console.log(await d.child.memory());
  } finally {
    await d.stop();
  }
} finally {
  await world.close();
}
