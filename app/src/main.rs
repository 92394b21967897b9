//! Entry point: mounts the app (in the browser; natively it only says how to build it).

#[cfg(target_arch = "wasm32")]
fn main() {
    console_error_panic_hook::set_once();
    leptos::mount::mount_to_body(paycode_app::App);
}

#[cfg(not(target_arch = "wasm32"))]
fn main() {
    eprintln!(
        "paycode-app runs in the browser: build it with `trunk build --release` (see README.md)"
    );
}
