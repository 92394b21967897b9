# Shared helpers for the scripts in this folder. Sourced, not run.

# Build artefacts live outside the clone so a fresh CI clone reuses earlier builds.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/paycode-target}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

step() { printf '\n==> %s\n' "$*"; }

# The toolchain from rust-toolchain.toml, with the wasm target and the components we use.
ensure_rust() {
    if ! command -v cargo >/dev/null 2>&1; then
        echo "cargo is not installed: install Rust with rustup (https://rustup.rs) first" >&2
        exit 1
    fi
    if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
        step "installing the wasm32-unknown-unknown target"
        rustup target add wasm32-unknown-unknown
    fi
    if ! cargo fmt --version >/dev/null 2>&1 || ! cargo clippy --version >/dev/null 2>&1; then
        step "installing rustfmt and clippy"
        rustup component add rustfmt clippy
    fi
}
