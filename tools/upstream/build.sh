#!/usr/bin/env bash
# Builds upstream's driver, sigs.k8s.io/secrets-store-csi-driver v1.6.0, for the differential suite
# (`deno task test:upstream`) and the upstream column of `deno task bench`, once per machine.
#
# `go install ...@v1.6.0` does not work here: the Go module proxy this project can reach refuses
# monis.app/mlog, a small logging module upstream's main package imports. go/ is a wrapper module that
# requires v1.6.0 (so every other dependency is the version upstream's go.mod pins) and replaces mlog with
# go/mlog, a stand-in with the same effect (klog verbosity and text or JSON format).
#
# The binary lands in $SSCSI_CACHE/upstream-v1.6.0/secrets-store-csi-driver (default
# ~/.cache/secrets-store-csi) and is reused when present; concurrent runs wait for each other (flock).
# Prints the binary's path.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
version=v1.6.0
cache=${SSCSI_CACHE:-$HOME/.cache/secrets-store-csi}
out="$cache/upstream-$version"
binary="$out/secrets-store-csi-driver"
[ -x /usr/local/go/bin/go ] && PATH=/usr/local/go/bin:$PATH
export CGO_ENABLED=0 GOFLAGS=-mod=mod
mkdir -p "$cache"
exec 9>"$cache/.upstream-$version.lock"
flock 9
if [ ! -x "$binary" ]; then
  started=$SECONDS
  echo "building upstream's driver $version into $out (a cold build takes about 15 minutes on 2 cores)" >&2
  rm -rf "$out.tmp" && mkdir -p "$out.tmp"
  (cd "$here/go" && go build -ldflags "-s -w -X sigs.k8s.io/secrets-store-csi-driver/pkg/version.BuildVersion=$version" \
    -o "$out.tmp/secrets-store-csi-driver" sigs.k8s.io/secrets-store-csi-driver/cmd/secrets-store-csi-driver)
  rm -rf "$out" && mv "$out.tmp" "$out"
  echo "built upstream's driver $version in $((SECONDS - started)) s" >&2
fi
echo "$binary"
