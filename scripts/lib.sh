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

# Trunk 0.21.14, the wasm-bindgen CLI matching Cargo.lock and wasm-opt, installed with cargo
# (Trunk runs offline and never downloads tools), and the brotli command. Safe to run again.
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
    # A release build writes brotli copies of the app's files (scripts/precompress, a Trunk
    # hook), which the proxy sends as they are.
    if ! command -v brotli >/dev/null 2>&1; then
        step "installing brotli (apt-get)"
        local sudo=""
        if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
        $sudo apt-get update -qq
        $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq brotli
    fi
}

# Builds the cashier app into dist/ (release, the `wasm-release` profile), offline.
build_app() {
    step "building the cashier app into dist/ (trunk build --release)"
    trunk build --release --offline
}

# Chromium, its WebDriver and a Chinese font (so screenshots show the copy, not boxes), for
# the browser tests. Safe to run again.
# certutil (libnss3-tools) lets the HTTPS browser tests give a test profile's NSS database
# the test CA.
ensure_chromium() {
    if command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1 \
        && command -v certutil >/dev/null 2>&1 \
        && fc-list :lang=zh 2>/dev/null | grep -q .; then
        return
    fi
    step "installing Chromium, chromedriver, certutil and a CJK font (apt-get)"
    local sudo=""
    if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
    $sudo apt-get update -qq
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
        chromium chromium-driver libnss3-tools fonts-wqy-microhei
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

# --- A throwaway PostgreSQL cluster for the tests --------------------------------------

# The PostgreSQL server binaries (initdb, pg_ctl, postgres): PG_BIN if set, else the newest
# Debian install under /usr/lib/postgresql; installs Debian's `postgresql` when there is
# none. Sets PG_BIN. Safe to run again.
ensure_postgres() {
    if [ -z "${PG_BIN:-}" ]; then
        PG_BIN="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)"
    fi
    if [ -z "$PG_BIN" ] || [ ! -x "$PG_BIN/initdb" ]; then
        step "installing PostgreSQL (apt-get install postgresql)"
        local sudo=""
        if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
        $sudo apt-get update -qq
        $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql
        PG_BIN="$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)"
    fi
    export PG_BIN
}

# Where the running test cluster is described (its directory and URL), per user, so that
# `scripts/pg-cluster stop` finds what `start` made.
PG_CLUSTER_STATE="${PG_CLUSTER_STATE:-${TMPDIR:-/tmp}/paycode-pg-cluster-$(id -u).env}"

# The system user the cluster runs as when we are root (PostgreSQL refuses to run as root).
PG_CLUSTER_USER="paycode-pg"

# Runs a PostgreSQL binary as the cluster's owner: ourselves, or PG_CLUSTER_USER under root.
pg_as_owner() {
    if [ "$(id -u)" -eq 0 ]; then
        runuser -u "$PG_CLUSTER_USER" -- "$@"
    else
        "$@"
    fi
}

# Starts a throwaway cluster, unless one described by PG_CLUSTER_STATE is still running,
# and exports PAYCODE_TEST_DATABASE_URL (postgres://paycode@127.0.0.1:PORT/paycode); sets
# PG_CLUSTER_STARTED=1 when it made a new one (pg_cluster_stop_if_started removes only that). The
# cluster lives in a fresh temporary directory, listens on a free loopback port with its
# socket inside that directory, trusts every local connection, and runs with fsync=off,
# synchronous_commit=off and full_page_writes=off: it is for tests and benchmarks only and
# must never hold data anyone wants to keep (a power cut may corrupt it). Safe to run again.
pg_cluster_start() {
    if [ -f "$PG_CLUSTER_STATE" ]; then
        # shellcheck disable=SC1090
        source "$PG_CLUSTER_STATE"
        if [ -n "${PG_CLUSTER_DIR:-}" ] && [ -n "${PG_BIN:-}" ] \
            && pg_as_owner "$PG_BIN/pg_ctl" -D "$PG_CLUSTER_DIR/data" status >/dev/null 2>&1; then
            export PAYCODE_TEST_DATABASE_URL
            echo "the test PostgreSQL cluster in $PG_CLUSTER_DIR is already running: $PAYCODE_TEST_DATABASE_URL"
            return
        fi
        pg_cluster_stop
    fi
    ensure_postgres
    if [ "$(id -u)" -eq 0 ] && ! id -u "$PG_CLUSTER_USER" >/dev/null 2>&1; then
        echo "creating the system user $PG_CLUSTER_USER to own the test cluster (PostgreSQL refuses root)"
        useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin \
            "$PG_CLUSTER_USER"
    fi
    PG_CLUSTER_DIR="$(mktemp -d "${TMPDIR:-/tmp}/paycode-pg.XXXXXX")"
    PG_CLUSTER_STARTED=1
    if [ "$(id -u)" -eq 0 ]; then chown "$PG_CLUSTER_USER:" "$PG_CLUSTER_DIR"; fi
    echo "initialising a throwaway PostgreSQL cluster in $PG_CLUSTER_DIR ($PG_BIN)"
    pg_as_owner "$PG_BIN/initdb" --pgdata="$PG_CLUSTER_DIR/data" --username=paycode \
        --auth=trust --encoding=UTF8 --locale=C --no-sync --no-instructions >"$PG_CLUSTER_DIR/initdb.log" 2>&1 \
        || { cat "$PG_CLUSTER_DIR/initdb.log" >&2; return 1; }
    # A free port: try random high ports until the server starts on one.
    local port attempt
    for attempt in 1 2 3 4 5 6 7 8 9 10; do
        port=$((20000 + RANDOM % 40000))
        if (: </dev/tcp/127.0.0.1/"$port") 2>/dev/null; then continue; fi
        echo "starting it on 127.0.0.1:$port (fsync=off: test data only)"
        if pg_as_owner "$PG_BIN/pg_ctl" --pgdata="$PG_CLUSTER_DIR/data" \
            --log="$PG_CLUSTER_DIR/server.log" --wait --timeout=60 \
            -o "-c listen_addresses=127.0.0.1 -c port=$port \
                -c unix_socket_directories=$PG_CLUSTER_DIR -c max_connections=300 \
                -c fsync=off -c synchronous_commit=off -c full_page_writes=off" \
            start >/dev/null; then
            break
        fi
        port=""
    done
    if [ -z "$port" ]; then
        tail -n 20 "$PG_CLUSTER_DIR/server.log" >&2
        echo "the test PostgreSQL cluster did not start; its files are in $PG_CLUSTER_DIR" >&2
        return 1
    fi
    pg_as_owner "$PG_BIN/createdb" --host=127.0.0.1 --port="$port" --username=paycode paycode
    PAYCODE_TEST_DATABASE_URL="postgres://paycode@127.0.0.1:$port/paycode"
    export PAYCODE_TEST_DATABASE_URL
    {
        printf 'PG_BIN=%q\n' "$PG_BIN"
        printf 'PG_CLUSTER_DIR=%q\n' "$PG_CLUSTER_DIR"
        printf 'PAYCODE_TEST_DATABASE_URL=%q\n' "$PAYCODE_TEST_DATABASE_URL"
    } >"$PG_CLUSTER_STATE"
    echo "the test PostgreSQL cluster is up: PAYCODE_TEST_DATABASE_URL=$PAYCODE_TEST_DATABASE_URL"
}

# Stops the cluster pg_cluster_start made (immediately: nothing in it is kept) and removes
# its directory. Does nothing when there is none. Safe to run again.
pg_cluster_stop() {
    [ -f "$PG_CLUSTER_STATE" ] || return 0
    local PG_CLUSTER_DIR="" PG_BIN="${PG_BIN:-}" PAYCODE_TEST_DATABASE_URL=""
    # shellcheck disable=SC1090
    source "$PG_CLUSTER_STATE"
    if [ -n "$PG_CLUSTER_DIR" ] && [ -d "$PG_CLUSTER_DIR" ]; then
        echo "stopping the test PostgreSQL cluster and removing $PG_CLUSTER_DIR"
        pg_as_owner "$PG_BIN/pg_ctl" --pgdata="$PG_CLUSTER_DIR/data" --mode=immediate \
            --wait stop >/dev/null 2>&1 || true
        rm -rf "$PG_CLUSTER_DIR"
    fi
    rm -f "$PG_CLUSTER_STATE"
}

# Stops the cluster only if pg_cluster_start made it in this shell (a developer's cluster
# that was already running is left alone). For traps.
pg_cluster_stop_if_started() {
    if [ "${PG_CLUSTER_STARTED:-}" = 1 ]; then
        pg_cluster_stop
        PG_CLUSTER_STARTED=""
    fi
}
