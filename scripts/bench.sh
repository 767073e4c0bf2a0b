#!/usr/bin/env bash
# Quorum beside etcd 3.4 on this machine: every workload of docs/performance.md, measured by
# the same load generator in one run; rewrites the results section and chart in docs/.
# Usage: scripts/bench.sh [requests-per-case]   (needs etcd from Debian's etcd-server)
set -euo pipefail
cd "$(dirname "$0")/.."
requests="${1:-4000}"
cargo build --release --bin quorum -q
target/release/quorum bench compare --requests "$requests" \
  --markdown docs/performance.md --svg docs/performance.svg
