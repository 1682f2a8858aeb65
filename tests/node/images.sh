#!/usr/bin/env bash
# Builds the two images the real-node tests run, as OCI image archives, from Debian's busybox-static and
# nothing else (no registry, no image builder): one layer with /bin/busybox and a symlink per applet, and an
# image config, manifest and index.json written here. `ctr -n k8s.io images import` reads the archives.
#   pause: the pod sandbox (containerd's sandbox_image); sleeps until SIGTERM/SIGINT.
#   test:  the containers of the test Pods; their command comes from the Pod spec.
# Usage: images.sh OUT_DIR   → OUT_DIR/pause.tar, OUT_DIR/test.tar (reused when both exist).
# The image names are printed, one "name=ref" a line.
set -euo pipefail
out=${1:?usage: images.sh OUT_DIR}
PAUSE_REF=localhost/sscsi-node/pause:1
TEST_REF=localhost/sscsi-node/busybox:1
echo "pause=$PAUSE_REF"
echo "test=$TEST_REF"
[ -s "$out/pause.tar" ] && [ -s "$out/test.tar" ] && exit 0

busybox=/bin/busybox
[ -x "$busybox" ] && "$busybox" --list >/dev/null || {
  echo "images.sh: $busybox is missing: install Debian's busybox-static" >&2
  exit 1
}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# The layer: reproducible (sorted names, fixed owner and time), so both images share one blob.
mkdir -p "$work/rootfs/bin" "$work/rootfs/tmp" "$work/rootfs/etc"
cp "$busybox" "$work/rootfs/bin/busybox"
for applet in $("$busybox" --list); do
  [ "$applet" = busybox ] || ln -s busybox "$work/rootfs/bin/$applet"
done
echo 'root:x:0:0:root:/:/bin/sh' >"$work/rootfs/etc/passwd"
echo 'root:x:0:' >"$work/rootfs/etc/group"
tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -C "$work/rootfs" -cf "$work/layer.tar" .

sha() { sha256sum "$1" | cut -d' ' -f1; }
size() { stat -c %s "$1"; }
layer_digest=$(sha "$work/layer.tar")

# image NAME REF CONFIG_JSON_FRAGMENT: writes $out/NAME.tar, an OCI layout holding one image.
image() {
  local name=$1 ref=$2 process=$3 dir="$work/$1"
  mkdir -p "$dir/blobs/sha256"
  cp "$work/layer.tar" "$dir/blobs/sha256/$layer_digest"
  cat >"$dir/config.json" <<JSON
{"architecture":"amd64","os":"linux","config":{$process,"Env":["PATH=/bin"],"WorkingDir":"/"},"rootfs":{"type":"layers","diff_ids":["sha256:$layer_digest"]},"history":[{"created_by":"tests/node/images.sh"}]}
JSON
  local config_digest
  config_digest=$(sha "$dir/config.json")
  cat >"$dir/manifest.json" <<JSON
{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:$config_digest","size":$(size "$dir/config.json")},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"sha256:$layer_digest","size":$(size "$work/layer.tar")}]}
JSON
  local manifest_digest
  manifest_digest=$(sha "$dir/manifest.json")
  mv "$dir/config.json" "$dir/blobs/sha256/$config_digest"
  mv "$dir/manifest.json" "$dir/blobs/sha256/$manifest_digest"
  echo '{"imageLayoutVersion":"1.0.0"}' >"$dir/oci-layout"
  cat >"$dir/index.json" <<JSON
{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:$manifest_digest","size":$(size "$dir/blobs/sha256/$manifest_digest"),"platform":{"architecture":"amd64","os":"linux"},"annotations":{"io.containerd.image.name":"$ref","org.opencontainers.image.ref.name":"${ref##*:}"}}]}
JSON
  tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -C "$dir" -cf "$work/$name.tar" oci-layout index.json blobs
}

image pause "$PAUSE_REF" '"Entrypoint":["/bin/sh","-c","trap \"exit 0\" TERM INT; sleep infinity & wait"]'
image test "$TEST_REF" '"Cmd":["/bin/sh"]'
mkdir -p "$out"
mv "$work/pause.tar" "$work/test.tar" "$out/"
