import { World } from "../fixture.ts";
import { benchStages, mountinfoScaling } from "../stages.ts";
import { benchOptions } from "../options.ts";
const world = await World.create();
try {
  const o = benchOptions(false, () => undefined);
  o.stageCycles = 300;
  console.log(JSON.stringify(await benchStages(world, o), null, 1));
  console.log(await mountinfoScaling(world, 0, 100), await mountinfoScaling(world, 110, 100));
} finally {
  await world.close();
}
