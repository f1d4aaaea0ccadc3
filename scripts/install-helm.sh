#!/usr/bin/env bash
# Build and install a pinned helm v3 binary from the Go module proxy into a cache directory.
#
# Usage: scripts/install-helm.sh [VERSION]
#   VERSION          helm release tag (default: $HELM_VERSION or the pin below)
#   HELM_CACHE_DIR   where the binary goes (default: ~/.cache/kube-runtime/helm); the binary lands in
#                    $HELM_CACHE_DIR/<version>/bin/helm and a stable symlink in $HELM_CACHE_DIR/bin/helm
#
# Only the Go toolchain and the module proxy are used (no release tarballs). A cached binary for the
# same version is reused. The last line printed is the absolute path of the binary; the exact module
# version it was built from is reported from the binary's own build info.
set -euo pipefail

HELM_PIN="v3.22.0"
version="${1:-${HELM_VERSION:-$HELM_PIN}}"
cache_dir="${HELM_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/kube-runtime/helm}"
bin_dir="$cache_dir/$version/bin"
binary="$bin_dir/helm"

if ! command -v go >/dev/null 2>&1; then
    echo "install-helm: the go toolchain is required (go install helm.sh/helm/v3/cmd/helm@$version)" >&2
    exit 2
fi

if [[ ! -x "$binary" ]]; then
    mkdir -p "$bin_dir"
    echo "install-helm: building helm $version with $(go version) (a few minutes on 2 cores)" >&2
    # The release Makefile stamps the version and the default Kubernetes version into the binary;
    # do the same so `helm version` and .Capabilities.KubeVersion match a release build.
    # The Kubernetes version comes from the client-go version helm's go.mod requires (v0.X.Y -> 1.X).
    gomod="$(go mod download -json "helm.sh/helm/v3@$version" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",$/\1/p')"
    client_go="$(awk '$1 == "k8s.io/client-go" {print $2; exit}' "$gomod")"
    k8s_minor="$(echo "$client_go" | cut -d. -f2)"
    pkg="helm.sh/helm/v3"
    ldflags="-s -w -X $pkg/internal/version.version=$version -X $pkg/internal/version.metadata="
    ldflags+=" -X $pkg/internal/version.gitTreeState=clean"
    for target in pkg/lint/rules pkg/chartutil; do
        ldflags+=" -X $pkg/$target.k8sVersionMajor=1 -X $pkg/$target.k8sVersionMinor=$k8s_minor"
    done
    GOBIN="$bin_dir" CGO_ENABLED=0 nice -n 10 go install -trimpath -ldflags "$ldflags" \
        "helm.sh/helm/v3/cmd/helm@$version"
fi

mkdir -p "$cache_dir/bin"
ln -sfn "$binary" "$cache_dir/bin/helm"

built_from="$(go version -m "$binary" | awk '$1 == "mod" && $2 == "helm.sh/helm/v3" {print $3}')"
echo "install-helm: module helm.sh/helm/v3 $built_from; $("$binary" version --short)" >&2
echo "$binary"
