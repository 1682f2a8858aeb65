#!/usr/bin/env bash
# Builds helm once per machine from its Go module on the module proxy (helm.sh/helm/v3, no wrapper module
# needed) into $SSCSI_CACHE/helm-<version>/helm (default ~/.cache/secrets-store-csi); a directory that holds
# the binary is reused as it is. Concurrent runs wait for each other (flock). Prints the binary's path.
#
# The ldflags are the ones helm's own Makefile sets for a release: the version `helm version` prints, and
# the Kubernetes version `helm template` and `helm lint` assume without a cluster (1.34, from the client-go
# v0.34 helm is built with; the default would be 1.20, which the chart's kubeVersion rejects).
set -euo pipefail
HELM_VERSION=v3.19.5
K8S_MINOR=34
cache=${SSCSI_CACHE:-$HOME/.cache/secrets-store-csi}
# Go 1.24+ (helm's go line); Debian's older Go may come first on PATH, so prefer this one.
[ -x /usr/local/go/bin/go ] && PATH=/usr/local/go/bin:$PATH
out="$cache/helm-$HELM_VERSION"
mkdir -p "$cache"
exec 9>"$cache/.helm-$HELM_VERSION.lock"
flock 9
if [ ! -x "$out/helm" ]; then
  started=$SECONDS
  echo "building helm $HELM_VERSION into $out (a cold build takes minutes on 2 cores)" >&2
  rm -rf "$out.tmp" && mkdir -p "$out.tmp"
  ldflags="-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION -X helm.sh/helm/v3/internal/version.metadata="
  for pkg in pkg/lint/rules pkg/chartutil; do
    ldflags+=" -X helm.sh/helm/v3/$pkg.k8sVersionMajor=1 -X helm.sh/helm/v3/$pkg.k8sVersionMinor=$K8S_MINOR"
  done
  GOBIN="$out.tmp" CGO_ENABLED=0 go install -trimpath -ldflags "$ldflags" "helm.sh/helm/v3/cmd/helm@$HELM_VERSION"
  rm -rf "$out" && mv "$out.tmp" "$out"
  echo "built helm $HELM_VERSION in $((SECONDS - started)) s" >&2
fi
echo "$out/helm"
