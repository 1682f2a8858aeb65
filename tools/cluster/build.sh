#!/usr/bin/env bash
# Builds the real Kubernetes peers the tests run against, once per machine, from the Go module proxy:
#   kube-apiserver, kube-controller-manager, kubelet, kubectl (k8s.io/kubernetes, through go/k8s, a wrapper
#   module that swaps the staging directories for their v0.x releases) and etcd (go/etcd).
# Binaries land in $SSCSI_CACHE/<component>-<version>/ (default ~/.cache/secrets-store-csi); a directory that
# holds every binary is reused as it is. Concurrent runs wait for each other (flock), so two checks started
# at once build once. Prints the directory of each component, one "name=dir" a line.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=versions.env
. "$here/versions.env"
cache=${SSCSI_CACHE:-$HOME/.cache/secrets-store-csi}
# Go 1.24+ (the wrapper modules' go lines); Debian's older Go may come first on PATH, so prefer this one.
[ -x /usr/local/go/bin/go ] && PATH=/usr/local/go/bin:$PATH
# Static binaries, no -trimpath: the flags are part of Go's build cache key, keep them as they are.
export CGO_ENABLED=0 GOFLAGS=-mod=mod
mkdir -p "$cache"

# build NAME VERSION MODULE_DIR BINARY=PACKAGE...: go build each PACKAGE of MODULE_DIR as
# $cache/NAME-VERSION/BINARY, unless every BINARY is there already (one at a time: -o names one file; the
# packages they share compile once, from Go's build cache).
build() {
  local name=$1 version=$2 module=$3
  shift 3
  local out="$cache/$name-$version" spec
  exec 9>"$cache/.$name-$version.lock"
  flock 9
  local missing=0
  for spec in "$@"; do [ -x "$out/${spec%%=*}" ] || missing=1; done
  if [ "$missing" = 1 ]; then
    local started=$SECONDS
    echo "building $name $version into $out (a cold build takes about 45 minutes on 2 cores)" >&2
    rm -rf "$out.tmp" && mkdir -p "$out.tmp"
    for spec in "$@"; do
      (cd "$here/go/$module" && go build -ldflags "$(ldflags "$name" "$version")" -o "$out.tmp/${spec%%=*}" "${spec#*=}")
    done
    rm -rf "$out" && mv "$out.tmp" "$out"
    echo "built $name $version in $((SECONDS - started)) s" >&2
  fi
  exec 9>&-
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

build k8s "$K8S_VERSION" k8s kube-apiserver=k8s.io/kubernetes/cmd/kube-apiserver \
  kube-controller-manager=k8s.io/kubernetes/cmd/kube-controller-manager kubelet=k8s.io/kubernetes/cmd/kubelet \
  kubectl=k8s.io/kubernetes/cmd/kubectl
build etcd "$ETCD_VERSION" etcd etcd=go.etcd.io/etcd/server/v3
