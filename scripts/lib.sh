# Shared helpers for the scripts in this folder. Sourced, not run.

# Build artefacts live outside the clone so a fresh CI clone reuses earlier builds.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/paycode-target}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

# Announces a step and reports how long the previous one took; `steps_done` closes the list.
step() {
    steps_done
    STEP_NAME="$*"
    STEP_STARTED=$SECONDS
    printf '\n==> %s\n' "$STEP_NAME"
}
steps_done() {
    if [ -n "${STEP_NAME:-}" ]; then
        printf -- '--- %s: %d s\n' "$STEP_NAME" $((SECONDS - STEP_STARTED))
        STEP_NAME=""
    fi
}

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

# --- The cashier app ---------------------------------------------------------

# The version of the `wasm-bindgen` crate in Cargo.lock: the CLI must match it exactly.
wasm_bindgen_lock_version() {
    awk '/^name = "wasm-bindgen"$/ { getline; gsub(/version = |"/, ""); print; exit }' Cargo.lock
}

# Trunk 0.21.14 and the wasm-bindgen CLI matching Cargo.lock, installed with cargo (Trunk
# runs offline and never downloads tools; wasm-opt is not used). Safe to run again.
ensure_app_tools() {
    ensure_rust
    local cargo_bin="${CARGO_HOME:-$HOME/.cargo}/bin"
    case ":$PATH:" in *":$cargo_bin:"*) ;; *) export PATH="$cargo_bin:$PATH" ;; esac
    if ! trunk --version 2>/dev/null | grep -qx 'trunk 0.21.14'; then
        step "installing Trunk 0.21.14 (cargo install, about 15 minutes on 2 cores)"
        cargo install trunk --version 0.21.14 --locked
    fi
    local wanted
    wanted="$(wasm_bindgen_lock_version)"
    if [ -z "$wanted" ]; then
        echo "Cargo.lock names no wasm-bindgen version" >&2
        exit 1
    fi
    if ! wasm-bindgen --version 2>/dev/null | grep -qx "wasm-bindgen $wanted"; then
        step "installing wasm-bindgen-cli $wanted to match Cargo.lock (cargo install, a few minutes)"
        cargo install wasm-bindgen-cli --version "$wanted" --force
    fi
    # Trunk shrinks both bundles with the wasm-opt it finds on PATH (www/index.html). Not
    # Debian's binaryen 108: it rewrites the export of wasm-bindgen's externref table to the
    # function table, and the page then fails to start. binaryen 116 from crates.io is built
    # from source (about 25 minutes on 2 cores).
    if ! wasm-opt --version 2>/dev/null | grep -q '^wasm-opt version 116'; then
        step "installing wasm-opt (binaryen 116; cargo install, about 25 minutes)"
        cargo install wasm-opt --version 0.116.1 --locked
    fi
}

# Builds the cashier app into dist/ (release, the `wasm-release` profile), offline.
build_app() {
    step "building the cashier app into dist/ (trunk build --release)"
    trunk build --release --offline
}

# Chromium, its WebDriver and a Chinese font (so screenshots show the copy, not boxes), for
# the browser tests. Safe to run again.
ensure_chromium() {
    if command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1 \
        && fc-list :lang=zh 2>/dev/null | grep -q .; then
        return
    fi
    step "installing Chromium, chromedriver and a CJK font (apt-get)"
    local sudo=""
    if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
    $sudo apt-get update -qq
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
        chromium chromium-driver fonts-wqy-microhei
}

# cargo-fuzz, for the coverage-guided fuzzing in scripts/test. Safe to run again.
ensure_cargo_fuzz() {
    if ! cargo fuzz --version >/dev/null 2>&1; then
        step "installing cargo-fuzz (cargo install, a few minutes the first time)"
        cargo install cargo-fuzz --locked
    fi
}

# Schemathesis, the OpenAPI conformance fuzzer, pinned, in a virtualenv beside the build
# artefacts (Python 3 and its venv module must be installed). Sets SCHEMATHESIS to its
# command. Safe to run again.
SCHEMATHESIS_VERSION="4.32.5"
ensure_schemathesis() {
    local venv="$CARGO_TARGET_DIR/schemathesis-$SCHEMATHESIS_VERSION"
    SCHEMATHESIS="$venv/bin/schemathesis"
    if "$SCHEMATHESIS" --version 2>/dev/null | grep -qx "schemathesis, version $SCHEMATHESIS_VERSION"; then
        return
    fi
    if ! command -v python3 >/dev/null 2>&1; then
        echo "python3 is not installed: the API conformance step needs Python 3 and pip" >&2
        exit 1
    fi
    step "installing Schemathesis $SCHEMATHESIS_VERSION into $venv (pip, a minute the first time)"
    rm -rf "$venv"
    if ! python3 -m venv "$venv"; then
        echo "python3 cannot make a virtualenv: install its venv module (apt-get install python3-venv)" >&2
        exit 1
    fi
    "$venv/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION"
    "$SCHEMATHESIS" --version
}
