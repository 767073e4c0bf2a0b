#!/usr/bin/env bash
# Scale, measured the same way for Quorum and etcd: load N keys of 256 bytes into a 3-member
# cluster, then report each member's resident memory and data dir size, how long a member
# takes from restart (SIGKILL, then start) to serving the last key from its own state, and how
# long a new member takes from start to the same (it catches up by snapshot). Peak is the most
# a member held resident at any time before the report.
# Usage: scripts/scale.sh quorum|etcd [N]   (etcd needs Debian's etcd-server and etcdctl)
# SNAPSHOT_COUNT (default 10000) is passed to both as --snapshot-count; QUORUM_BIN runs that
# binary instead of building target/release/quorum (to compare two builds).
set -euo pipefail
cd "$(dirname "$0")/.."
prog="${1:-quorum}"
n="${2:-1000000}"
if [ -z "${QUORUM_BIN:-}" ]; then cargo build --release --bin quorum -q; fi
quorum="${QUORUM_BIN:-$PWD/target/release/quorum}"
dir=$(mktemp -d)
base=$((30000 + RANDOM % 20000))
client() { echo "http://127.0.0.1:$((base + $1))"; }
peer() { echo "http://127.0.0.1:$((base + 100 + $1))"; }
initial="m0=$(peer 0),m1=$(peer 1),m2=$(peer 2)"
declare -a pids
cleanup() {
  for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  rm -rf "$dir"
}
trap cleanup EXIT

start() { # index state initial-cluster
  local i=$1 cmd
  if [ "$prog" = etcd ]; then cmd=(etcd); else cmd=("$quorum" serve); fi
  "${cmd[@]}" --name "m$i" --data-dir "$dir/m$i" \
    --listen-client-urls "$(client "$i")" --advertise-client-urls "$(client "$i")" \
    --listen-peer-urls "$(peer "$i")" --initial-advertise-peer-urls "$(peer "$i")" \
    --initial-cluster "$3" --initial-cluster-state "$2" --initial-cluster-token scale \
    --snapshot-count "${SNAPSHOT_COUNT:-10000}" >>"$dir/m$i.log" 2>&1 &
  pids[$i]=$!
  disown "$!" # killed on purpose below: no job-control notices
}
now_ms() { echo $(($(date +%s%N) / 1000000)); }
# Waits until member i serves `key` from its own state (a serializable read). Short timeouts:
# a probe that dials before the member listens is refused and backs off, so a long timeout
# would measure the probe rather than the member.
serves() {
  until ETCDCTL_API=3 etcdctl --endpoints "$(client "$1")" --dial-timeout=200ms --command-timeout=250ms \
    get --consistency=s --print-value-only "$2" 2>/dev/null | grep -q .; do
    sleep 0.05
  done
}
rss_mb() { echo $(($(ps -o rss= -p "$1") / 1024)); }
# The most the process has held resident since it started (a snapshot's write, a start's read).
peak_mb() { echo $(($(awk '/^VmHWM/ {print $2}' "/proc/$1/status") / 1024)); }
dir_mb() { echo $(($(du -sb "$dir/m$1" | cut -f1) / 1048576)); }

for i in 0 1 2; do start "$i" new "$initial"; done
until ETCDCTL_API=3 etcdctl --endpoints "$(client 0)" put probe ok >/dev/null 2>&1; do sleep 0.1; done
echo "# $prog: loading $n keys of 256 bytes (100 clients, 10 connections)"
"$quorum" bench --endpoints "$(client 0),$(client 1),$(client 2)" \
  --clients 100 --connections 10 --requests "$n" --value-bytes 256 | tail -3
last="bench/0/$((n / 100 - 1))"
serves 0 "$last"
serves 1 "$last"
serves 2 "$last"
sleep 5
data_mb=$(( n * (256 + 12) / 1048576 ))
echo "data: ~${data_mb} MB of keys and values"
for i in 0 1 2; do echo "m$i: rss $(rss_mb "${pids[$i]}") MB (peak $(peak_mb "${pids[$i]}") MB), data dir $(dir_mb "$i") MB"; done

kill -9 "${pids[1]}"
while kill -0 "${pids[1]}" 2>/dev/null; do sleep 0.02; done
t0=$(now_ms)
start 1 new "$initial"
serves 1 "$last"
echo "restart to serving (m1): $(($(now_ms) - t0)) ms, rss after $(rss_mb "${pids[1]}") MB (peak $(peak_mb "${pids[1]}") MB)"

# The restart may have cost the leader: retry until the cluster has one again.
until ETCDCTL_API=3 etcdctl --endpoints "$(client 0),$(client 2)" member add m3 \
  --peer-urls "$(peer 3)" >/dev/null 2>&1; do sleep 0.2; done
t0=$(now_ms)
start 3 existing "$initial,m3=$(peer 3)"
serves 3 "$last"
echo "new member caught up (m3): $(($(now_ms) - t0)) ms, rss $(rss_mb "${pids[3]}") MB (peak $(peak_mb "${pids[3]}") MB), data dir $(dir_mb 3) MB"
# The leader read the snapshot it sent m3: its peak shows what that cost.
echo "peaks at the end: m0 $(peak_mb "${pids[0]}") MB, m2 $(peak_mb "${pids[2]}") MB"
