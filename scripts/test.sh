#!/usr/bin/env bash
# The whole test suite, from a fresh machine: installs what the tests need
# (Debian packages listed in .ci/apt-packages.txt, cargo-nextest if absent),
# builds every crate (the dbops binary and the plugin cdylibs the end-to-end
# tests load), then runs formatting, lint and all tests.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '\n==> %s\n' "$*"; }

install_packages() {
    local wanted missing=()
    wanted=$(grep -v '^\s*#' .ci/apt-packages.txt | tr -s ' \t' '\n' | sed '/^$/d' | sort -u)
    for pkg in $wanted; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
    done
    if [ ${#missing[@]} -eq 0 ]; then
        log "Debian packages already installed"
        return
    fi
    log "Installing Debian packages: ${missing[*]}"
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
    # The packaged servers must not keep running as system services: the
    # tests start their own instances on loopback.
    for svc in zookeeper mariadb mysql; do
        $sudo systemctl stop "$svc" >/dev/null 2>&1 || $sudo service "$svc" stop >/dev/null 2>&1 || true
    done
}

install_kubectl() {
    # kubectl may already come from another package (e.g. Google's "kubectl");
    # Debian's kubernetes-client would conflict with it, so only install it
    # when no kubectl is on the PATH.
    command -v kubectl >/dev/null 2>&1 && return
    log "Installing kubectl (Debian package kubernetes-client)"
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends kubernetes-client
}

install_packages
install_kubectl
command -v cargo-nextest >/dev/null 2>&1 || { log "Installing cargo-nextest"; cargo install --locked cargo-nextest; }

# A one-off build on a CI machine with little disk: no incremental state
# and no debug info. Test failures still name the file:line that panicked;
# backtraces name functions only. The target dir is ~2 GiB instead of ~4
# (line tables) or ~12 (full debug info), and links faster on 2 cores.
# Each crate's integration tests are one test binary (tests/integration.rs)
# for the same reason.
export CARGO_INCREMENTAL=0
export CARGO_PROFILE_DEV_DEBUG=0
export CARGO_PROFILE_TEST_DEBUG=0

log "cargo fmt --check"
cargo fmt --all -- --check

log "Building the workspace (binary + plugins)"
cargo build --workspace --all-targets --locked

log "cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings

log "Running the tests"
cargo nextest run --workspace --locked --no-fail-fast "$@"
