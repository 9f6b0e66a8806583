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

install_packages
command -v cargo-nextest >/dev/null 2>&1 || { log "Installing cargo-nextest"; cargo install --locked cargo-nextest; }

log "cargo fmt --check"
cargo fmt --all -- --check

log "Building the workspace (binary + plugins)"
cargo build --workspace --all-targets --locked

log "cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings

log "Running the tests"
cargo nextest run --workspace --locked --no-fail-fast "$@"
