#!/usr/bin/env bash
# Build the compiled benchmark peers from the registries (crates.io, the Go module proxy) into
# ~/.cache/kube-runtime/peers/. Idempotent: cargo and go rebuild only what changed. A peer whose
# toolchain is missing is skipped with a message (run.py then reports it as unavailable, and why).
set -u
here="$(cd "$(dirname "$0")" && pwd)"
out="${KR_PEERS_DIR:-$HOME/.cache/kube-runtime/peers}"
mkdir -p "$out"
status=0

if command -v cargo >/dev/null 2>&1; then
  echo "building kube-rs peer (cargo build --release) into $out/kube-rs-target"
  ( cd "$here/peers/kube-rs" && CARGO_TARGET_DIR="$out/kube-rs-target" nice -n 10 cargo build --release --locked ) \
    || { echo "kube-rs peer: build failed" >&2; status=1; }
else
  echo "kube-rs peer: skipped (no cargo on PATH)" >&2
fi

if command -v go >/dev/null 2>&1; then
  echo "building controller-runtime peer (go build) into $out/controller-runtime-peer"
  ( cd "$here/peers/controller-runtime" && nice -n 10 go build -o "$out/controller-runtime-peer" . ) \
    || { echo "controller-runtime peer: build failed" >&2; status=1; }
else
  echo "controller-runtime peer: skipped (no go on PATH)" >&2
fi
exit $status
