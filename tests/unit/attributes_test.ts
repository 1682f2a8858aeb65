import assert from "node:assert/strict";
import { goJsonStringMap, providerAttributes, providerSecrets } from "../../lib/volume/attributes.ts";
import type { PublishRequest, SecretProviderClass } from "../../lib/volume/ports.ts";

const spc: SecretProviderClass = {
  name: "s",
  namespace: "ns",
  provider: "p",
  parameters: { objects: "- a", z: "1", "csi.storage.k8s.io/pod.name": "from-spc" },
  secretObjects: [],
};

function request(
  volumeContext: Record<string, string>,
  secrets: Record<string, string> = {},
): PublishRequest {
  return { volumeId: "v", targetPath: "/t", readonly: true, volumeContext, secrets };
}

Deno.test("goJsonStringMap matches Go's json.Marshal: sorted keys, HTML characters escaped", () => {
  assert.equal(goJsonStringMap({ b: "1", a: "<x>&\u2028" }), '{"a":"\\u003cx\\u003e\\u0026\\u2028","b":"1"}');
  assert.equal(goJsonStringMap({}), "{}");
  assert.equal(goJsonStringMap({ q: 'say "hi"\n' }), '{"q":"say \\"hi\\"\\n"}');
  // Keys in Go's order (UTF-8 bytes): U+FFFD (EF BF BD) before U+1F600 (F0 9F 98 80), unlike UTF-16 order.
  assert.equal(goJsonStringMap({ "\u{1F600}": "b", "\uFFFD": "a" }), '{"\uFFFD":"a","\u{1F600}":"b"}');
});

Deno.test("attributes: SPC parameters overlaid with every volume attribute", () => {
  const attrs = JSON.parse(
    providerAttributes(spc, request({ "csi.storage.k8s.io/pod.name": "web", extra: "x" })),
  );
  assert.deepEqual(attrs, { objects: "- a", z: "1", "csi.storage.k8s.io/pod.name": "web", extra: "x" });
});

Deno.test("service account tokens: taken from secrets first, then from the volume context", () => {
  const key = "csi.storage.k8s.io/serviceAccount.tokens";
  const fromContext = JSON.parse(providerAttributes(spc, request({ [key]: "ctx" })));
  assert.equal(fromContext[key], "ctx");
  const fromSecrets = JSON.parse(providerAttributes(spc, request({ [key]: "ctx" }, { [key]: "sec" })));
  assert.equal(fromSecrets[key], "sec");
});

Deno.test("secrets are passed through as Go would marshal them", () => {
  assert.equal(
    providerSecrets(request({}, { username: "u", password: "p<" })),
    '{"password":"p\\u003c","username":"u"}',
  );
});
