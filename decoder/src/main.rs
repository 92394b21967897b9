//! The decoder worker's entry point (wasm32): Trunk builds this binary as a Web Worker
//! (`data-type="worker"` in `www/index.html`), which the page starts only when the camera
//! opens. Off wasm32 it does nothing.

#[cfg(target_arch = "wasm32")]
mod worker;

fn main() {
    #[cfg(target_arch = "wasm32")]
    worker::start();
}
