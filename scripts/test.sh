#!/usr/bin/env bash
# The test command: installs what the tests need when it is missing, then runs the checks and
# every test of the workspace. CI (.ci/run) runs exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v etcd >/dev/null 2>&1 || need+=(etcd-server)
# The timeline test renders the HTML in a real headless browser.
[ -x /usr/bin/chromium ] || need+=(chromium)
# The admin-page click tests drive that chromium through WebDriver.
[ -x /usr/bin/chromedriver ] || need+=(chromium-driver)
command -v etcdctl >/dev/null 2>&1 || need+=(etcd-client)
command -v protoc >/dev/null 2>&1 || need+=(protobuf-compiler)
# The etcd-client crate's protos import google/protobuf/*.proto, which Debian ships in
# libprotobuf-dev (only a recommendation of protobuf-compiler, so name it).
[ -f /usr/include/google/protobuf/descriptor.proto ] || need+=(libprotobuf-dev)
if ((${#need[@]})); then
  sudo=""
  [ "$(id -u)" -ne 0 ] && sudo=sudo
  echo "installing: ${need[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}"
  # Debian may start a packaged etcd on 2379; the tests pick free ports, but stop it anyway so
  # a local `quorum cluster` can take etcd's customary ports.
  $sudo systemctl stop etcd >/dev/null 2>&1 || $sudo service etcd stop >/dev/null 2>&1 || true
fi

cargo fmt --all --check
cargo clippy --workspace --all-targets -- -D warnings
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --no-fail-fast "$@"
else
  cargo test --workspace --no-fail-fast "$@"
fi
