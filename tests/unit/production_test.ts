/**
 * The production heap limits and the DaemonSet's memory limit are one decision (tools/production.ts):
 * the manifest's limit is the one the V8 flags were sized for, it satisfies the sizing rule, and neither
 * requests nor limits exceed upstream's driver container (100Mi / 200Mi).
 */
import assert from "node:assert/strict";
import { parse } from "yaml";
import {
  DAEMONSET_MEMORY_LIMIT_MIB,
  MAX_OLD_SPACE_MIB,
  MAX_SEMI_SPACE_MIB,
  RUNTIME_MIB,
  TMPFS_BUDGET_MIB,
  V8_FLAGS,
} from "../../tools/production.ts";

// deno-lint-ignore no-explicit-any
type Obj = Record<string, any>;

/** "200Mi" → 200 */
function mebibytes(quantity: string): number {
  const match = /^(\d+)(Mi|Gi)$/.exec(quantity);
  assert.ok(match, `memory quantity ${quantity} is not in Mi or Gi`);
  return Number(match[1]) * (match[2] === "Gi" ? 1024 : 1);
}

const daemonSet = parse(await Deno.readTextFile(new URL("../../manifests/daemonset.yaml", import.meta.url)));
const driver = (daemonSet as Obj).spec.template.spec.containers.find((c: Obj) => c.name === "secrets-store");

Deno.test("production: the DaemonSet's memory limit is the one the heap limits were sized for", () => {
  assert.equal(mebibytes(driver.resources.limits.memory), DAEMONSET_MEMORY_LIMIT_MIB);
});

Deno.test("production: runtime + young generation + old space + tmpfs pages fit the memory limit", () => {
  const youngGeneration = 3 * MAX_SEMI_SPACE_MIB;
  assert.ok(
    RUNTIME_MIB + youngGeneration + MAX_OLD_SPACE_MIB + TMPFS_BUDGET_MIB <= DAEMONSET_MEMORY_LIMIT_MIB,
    "the heap limits do not fit the container's memory limit",
  );
  assert.ok(V8_FLAGS.includes(`--max-old-space-size=${MAX_OLD_SPACE_MIB}`));
  assert.ok(V8_FLAGS.includes(`--max-semi-space-size=${MAX_SEMI_SPACE_MIB}`));
});

Deno.test("production: requests and limits no higher than upstream's driver container", () => {
  assert.ok(mebibytes(driver.resources.requests.memory) <= 100);
  assert.ok(mebibytes(driver.resources.limits.memory) <= 200);
});
