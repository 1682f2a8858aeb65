#!/usr/bin/env bash
# Builds the real Kubernetes peers the tests run against, once per machine, from the Go module proxy:
#   kube-apiserver, kube-controller-manager, kubelet, kubectl (k8s.io/kubernetes, through go/k8s, a wrapper
#   module that swaps the staging directories for their v0.x releases) and etcd (go/etcd).
# Binaries land in $SSCSI_CACHE/<component>-<version>/ (default ~/.cache/secrets-store-csi); a directory that
# holds every binary is reused as it is. Prints the directory of each component, one "name=dir" a line.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=versions.env
. "$here/versions.env"
cache=${SSCSI_CACHE:-$HOME/.cache/secrets-store-csi}
export CGO_ENABLED=0 GOFLAGS=-mod=mod

# build NAME VERSION MODULE_DIR TOOL...: go build each tool of MODULE_DIR into $cache/NAME-VERSION/.
build() {
  local name=$1 version=$2 module=$3
  shift 3
  local out="$cache/$name-$version" missing=0 tool
  for tool in "$@"; do [ -x "$out/$(basename "$tool")" ] || missing=1; done
  if [ "$missing" = 1 ]; then
    local started=$SECONDS
    echo "building $name $version into $out (cold builds take minutes on 2 cores)" >&2
    mkdir -p "$out.tmp"
    (cd "$here/go/$module" && go build -ldflags "$(ldflags "$name" "$version")" -o "$out.tmp/" "$@")
    rm -rf "$out" && mv "$out.tmp" "$out"
    echo "built $name $version in $((SECONDS - started)) s" >&2
  fi
  echo "$name=$out"
}

# Version stamps, so that `kubectl version` and the API server's /version say what they are.
ldflags() {
  case $1 in
    k8s) local v=$2 pkg=k8s.io/component-base/version
      echo "-s -w -X $pkg.gitVersion=$v -X $pkg.gitMajor=${v%%.*} -X $pkg.gitMinor=$(echo "$v" | cut -d. -f2) -X $pkg.gitTreeState=clean" | sed 's/gitMajor=v/gitMajor=/' ;;
    *) echo "-s -w" ;;
  esac
}

build k8s "$K8S_VERSION" k8s k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager \
  k8s.io/kubernetes/cmd/kubelet k8s.io/kubernetes/cmd/kubectl
build etcd "$ETCD_VERSION" etcd go.etcd.io/etcd/server/v3
