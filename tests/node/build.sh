#!/usr/bin/env bash
# Builds what the real-node tests run besides the Kubernetes binaries (tools/cluster/build.sh builds those):
#   the registrar (go/registrar, from the Go module proxy, pinned by its go.sum) and
#   the pause and test images (images.sh, from Debian's busybox-static).
# Both are cached under $SSCSI_CACHE (default ~/.cache/secrets-store-csi), keyed by a hash of their sources
# (and of the busybox package version for the images). Prints "registrar=FILE", "images=DIR" and the image
# references ("pause=REF", "test=REF"), one a line.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cache=${SSCSI_CACHE:-$HOME/.cache/secrets-store-csi}
# Go 1.24+ (go/registrar's go line); Debian's older Go may come first on PATH, so prefer this one.
[ -x /usr/local/go/bin/go ] && PATH=/usr/local/go/bin:$PATH

key() { cat "$@" | sha256sum | cut -c1-12; }

registrar_dir="$cache/node-registrar-$(key "$here"/go/registrar/go.mod "$here"/go/registrar/go.sum "$here"/go/registrar/main.go)"
if [ ! -x "$registrar_dir/registrar" ]; then
  echo "building the registrar into $registrar_dir" >&2
  mkdir -p "$cache"
  tmp=$(mktemp -d "$registrar_dir.XXXXXX")
  (cd "$here/go/registrar" && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$tmp/registrar" .)
  rm -rf "$registrar_dir" && mv "$tmp" "$registrar_dir"
fi
echo "registrar=$registrar_dir/registrar"

busybox_version=$(dpkg-query -W -f='${Version}' busybox-static 2>/dev/null || echo missing)
images_dir="$cache/node-images-$( (echo "$busybox_version"; cat "$here/images.sh") | sha256sum | cut -c1-12)"
echo "images=$images_dir"
"$here/images.sh" "$images_dir"
