//! Entry point: mounts the app (in the browser; natively it only says how to build it).

#[cfg(target_arch = "wasm32")]
fn main() {
    // When the wasm runs (compiled and instantiated): the app-ready benchmark's split
    // between loading and rendering.
    if let Some(performance) = paycode_app::browser::window().performance() {
        let _ = performance.mark("paycode-start");
    }
    console_error_panic_hook::set_once();
    leptos::mount::mount_to_body(paycode_app::App);
}

#[cfg(not(target_arch = "wasm32"))]
fn main() {
    eprintln!(
        "paycode-app runs in the browser: build it with `trunk build --release` (see README.md)"
    );
}
