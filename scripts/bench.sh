#!/usr/bin/env bash
# Put/get throughput of a 3-member Quorum cluster and a 3-member etcd 3.4 cluster on this
# machine, measured by the same load generator (`quorum bench`) in one run.
# Usage: scripts/bench.sh [requests]   (needs etcd from Debian's etcd-server)
set -euo pipefail
cd "$(dirname "$0")/.."
requests="${1:-4000}"
cargo build --release --bin quorum -q
bin=target/release/quorum
work=$(mktemp -d)
pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

start_cluster() { # $1 = program, $2 = base port
  local prog=$1 base=$2 ic="" i
  for i in 0 1 2; do ic+="m$i=http://127.0.0.1:$((base + 10 + i)),"; done
  ic=${ic%,}
  for i in 0 1 2; do
    $prog --name "m$i" --data-dir "$work/$base-$i" \
      --listen-client-urls "http://127.0.0.1:$((base + i))" --advertise-client-urls "http://127.0.0.1:$((base + i))" \
      --listen-peer-urls "http://127.0.0.1:$((base + 10 + i))" --initial-advertise-peer-urls "http://127.0.0.1:$((base + 10 + i))" \
      --initial-cluster "$ic" --initial-cluster-state new --initial-cluster-token bench >"$work/$base-$i.log" 2>&1 &
    pids+=($!)
  done
}

start_cluster "$bin serve" 41000
start_cluster "etcd" 42000
sleep 4
for target in "quorum 41000" "etcd 42000"; do
  set -- $target
  eps="http://127.0.0.1:$2,http://127.0.0.1:$(($2 + 1)),http://127.0.0.1:$(($2 + 2))"
  for clients in 1 100; do
    for workload in put get; do
      printf '%-7s ' "$1"
      $bin bench --endpoints "$eps" --clients "$clients" --requests "$requests" --workload "$workload"
    done
  done
done
