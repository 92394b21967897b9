//! The worker's message loop. The page posts `{width, height, pixels}` (`pixels`: the RGBA
//! bytes of a canvas `ImageData`, a `Uint8ClampedArray`); the worker answers every frame with
//! `{text, format, ms}`: the decoded text and its `BarcodeDetector` format name, or `null`
//! for both, and the decode time in milliseconds. It posts `{ready: true}` once it runs, so
//! the page sends no frame before the handler exists.

use js_sys::{Object, Reflect, Uint8Array};
use wasm_bindgen::closure::Closure;
use wasm_bindgen::{JsCast, JsValue};
use web_sys::{DedicatedWorkerGlobalScope, MessageEvent};

use paycode_decoder::{GreyFrame, decode};

/// Installs the message handler and tells the page the worker is ready.
pub fn start() {
    let scope: DedicatedWorkerGlobalScope = js_sys::global().unchecked_into();
    let reply_to = scope.clone();
    let handler = Closure::<dyn FnMut(MessageEvent)>::new(move |event: MessageEvent| {
        let answer = answer(&event.data());
        let _ = reply_to.post_message(&answer);
    });
    scope.set_onmessage(Some(handler.as_ref().unchecked_ref()));
    // The handler lives as long as the worker.
    handler.forget();
    let ready = Object::new();
    let _ = Reflect::set(&ready, &"ready".into(), &JsValue::TRUE);
    let _ = scope.post_message(&ready);
}

fn number(data: &JsValue, key: &str) -> Option<u32> {
    Reflect::get(data, &key.into())
        .ok()?
        .as_f64()
        .filter(|value| *value >= 0.0 && *value <= f64::from(u32::MAX))
        .map(|value| value as u32)
}

fn now_ms() -> f64 {
    js_sys::global()
        .unchecked_into::<web_sys::WorkerGlobalScope>()
        .performance()
        .map_or(0.0, |performance| performance.now())
}

fn answer(data: &JsValue) -> JsValue {
    let started = now_ms();
    let decoded = (|| {
        let width = number(data, "width")?;
        let height = number(data, "height")?;
        let pixels = Reflect::get(data, &"pixels".into()).ok()?;
        let rgba = Uint8Array::new(&pixels).to_vec();
        let frame = GreyFrame::from_rgba(width, height, &rgba).ok()?;
        decode(&frame)
    })();
    let reply = Object::new();
    let (text, format) = match decoded {
        Some(decoded) => (
            JsValue::from_str(&decoded.text),
            JsValue::from_str(decoded.symbology.as_str()),
        ),
        None => (JsValue::NULL, JsValue::NULL),
    };
    let _ = Reflect::set(&reply, &"text".into(), &text);
    let _ = Reflect::set(&reply, &"format".into(), &format);
    let _ = Reflect::set(&reply, &"ms".into(), &JsValue::from_f64(now_ms() - started));
    reply.into()
}
