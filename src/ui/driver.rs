//! Browser plumbing the page needs around the engine: the GPU, timers that yield to the event
//! loop, the URL, localStorage, downloads and the clipboard.

use crate::gpu::GpuContext;
use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;
use wasm_bindgen::closure::Closure;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;

/// Opens the GPU, or says plainly why there is none.
pub async fn acquire_gpu() -> Result<Rc<GpuContext>, String> {
    let window = web_sys::window().ok_or("no window")?;
    let gpu = js_sys::Reflect::get(&window.navigator(), &"gpu".into()).unwrap_or(wasm_bindgen::JsValue::UNDEFINED);
    if gpu.is_undefined() || gpu.is_null() {
        return Err("this browser has no WebGPU (navigator.gpu is missing)".into());
    }
    let mut context = GpuContext::new().await.map_err(|e| e.to_string())?;
    context.set_software(browser_says_software(&gpu).await);
    Ok(Rc::new(context))
}

/// Whether the browser's adapter is a fallback (software) one: `GPUAdapterInfo.isFallbackAdapter`
/// (or the older `GPUAdapter.isFallbackAdapter`), or a known software rasteriser's name.
async fn browser_says_software(gpu: &wasm_bindgen::JsValue) -> bool {
    let Ok(adapter) = call(gpu, "requestAdapter", &[]).await else { return false };
    if adapter.is_null() || adapter.is_undefined() {
        return false;
    }
    let get = |target: &wasm_bindgen::JsValue, key: &str| js_sys::Reflect::get(target, &key.into()).unwrap_or_default();
    let info = get(&adapter, "info");
    let flagged = get(&info, "isFallbackAdapter").as_bool().or(get(&adapter, "isFallbackAdapter").as_bool()).unwrap_or(false);
    let named = ["vendor", "architecture", "description", "device"]
        .iter()
        .filter_map(|key| get(&info, key).as_string())
        .any(|v| ["swiftshader", "llvmpipe", "lavapipe", "warp"].iter().any(|soft| v.to_lowercase().contains(soft)));
    flagged || named
}

/// Resolves once the browser has had its turn (input, a frame that is due): a message the page
/// posts to itself. `setTimeout(0)` would do the same, but the HTML standard clamps nested
/// timers to 4 ms after five levels, and a run that yields after every slice of CPU work is
/// nested all the way: it lost 4 ms a slice. Falls back to a timer where messages are missing.
pub async fn yield_now() {
    let posted = YIELDER.with(|yielder| {
        let yielder = yielder.as_ref()?;
        let promise = js_sys::Promise::new(&mut |resolve, _| {
            yielder.waiting.borrow_mut().push_back(resolve);
            let _ = yielder.channel.port2().post_message(&wasm_bindgen::JsValue::NULL);
        });
        Some(JsFuture::from(promise))
    });
    match posted {
        Some(message) => {
            let _ = message.await;
        }
        None => sleep(0).await,
    }
}

/// One channel for every yield: each message that comes back resolves the oldest waiter.
struct Yielder {
    channel: web_sys::MessageChannel,
    waiting: Rc<RefCell<VecDeque<js_sys::Function>>>,
    _on_message: Closure<dyn FnMut()>,
}

thread_local! {
    static YIELDER: Option<Yielder> = Yielder::new();
}

impl Yielder {
    fn new() -> Option<Yielder> {
        let channel = web_sys::MessageChannel::new().ok()?;
        let waiting: Rc<RefCell<VecDeque<js_sys::Function>>> = Rc::default();
        let queue = waiting.clone();
        let on_message = Closure::<dyn FnMut()>::new(move || {
            let next = queue.borrow_mut().pop_front();
            if let Some(resolve) = next {
                let _ = resolve.call0(&wasm_bindgen::JsValue::NULL);
            }
        });
        channel.port1().set_onmessage(Some(on_message.as_ref().unchecked_ref()));
        Some(Yielder { channel, waiting, _on_message: on_message })
    }
}

/// Resolves after `ms` milliseconds, letting the browser run in between.
pub async fn sleep(ms: i32) {
    let promise = js_sys::Promise::new(&mut |resolve, _| {
        if let Some(w) = web_sys::window() {
            let _ = w.set_timeout_with_callback_and_timeout_and_arguments_0(&resolve, ms);
        }
    });
    let _ = JsFuture::from(promise).await;
}

/// Milliseconds since the page started (monotonic).
pub fn now() -> f64 {
    web_sys::window().and_then(|w| w.performance()).map(|p| p.now()).unwrap_or(0.0)
}

pub fn tab_hidden() -> bool {
    web_sys::window().and_then(|w| w.document()).map(|d| d.hidden()).unwrap_or(false)
}

/// The page's query string (without '?').
pub fn query() -> String {
    web_sys::window().and_then(|w| w.location().search().ok()).unwrap_or_default().trim_start_matches('?').to_string()
}

/// The value of the first `key=` pair of a query string (the page's own keys: `bench=`,
/// `backend=`, ...).
pub fn query_value<'a>(query: &'a str, key: &str) -> Option<&'a str> {
    query.split('&').find_map(|pair| pair.strip_prefix(key)?.strip_prefix('='))
}

/// The full share URL for a query string.
pub fn share_url(query: &str) -> String {
    let location = web_sys::window().map(|w| w.location());
    let origin = location.as_ref().and_then(|l| l.origin().ok()).unwrap_or_default();
    let path = location.as_ref().and_then(|l| l.pathname().ok()).unwrap_or_default();
    format!("{origin}{path}?{query}")
}

/// Rewrites the address bar without a reload or a history entry.
pub fn replace_url(query: &str) {
    if let Some(history) = web_sys::window().and_then(|w| w.history().ok()) {
        let _ = history.replace_state_with_url(&wasm_bindgen::JsValue::NULL, "", Some(&format!("?{query}")));
    }
}

/// Scrolls the element with this id to the top of the view.
pub fn scroll_to(id: &str) {
    if let Some(element) = web_sys::window().and_then(|w| w.document()).and_then(|d| d.get_element_by_id(id)) {
        element.scroll_into_view();
    }
}

fn storage() -> Option<web_sys::Storage> {
    web_sys::window()?.local_storage().ok()?
}

pub fn load(key: &str) -> Option<String> {
    storage()?.get_item(key).ok()?
}

pub fn save(key: &str, value: &str) {
    // A full quota only costs the saved run; never an error for the user.
    let _ = try_save(key, value);
}

/// [`save`], saying whether the value was kept (false: no storage, or its quota is full).
pub fn try_save(key: &str, value: &str) -> bool {
    storage().is_some_and(|s| s.set_item(key, value).is_ok())
}

/// Calls `target.method(args...)` and awaits the result when it is a promise.
async fn call(target: &wasm_bindgen::JsValue, method: &str, args: &[wasm_bindgen::JsValue]) -> Result<wasm_bindgen::JsValue, String> {
    let function: js_sys::Function =
        js_sys::Reflect::get(target, &method.into()).ok().and_then(|f| f.dyn_into().ok()).ok_or_else(|| format!("no {method}"))?;
    let result = function.apply(target, &args.iter().collect::<js_sys::Array>()).map_err(describe)?;
    match result.dyn_into::<js_sys::Promise>() {
        Ok(promise) => JsFuture::from(promise).await.map_err(describe),
        Err(value) => Ok(value),
    }
}

/// A thrown JS value as text (`name: message` for errors).
fn describe(value: wasm_bindgen::JsValue) -> String {
    match value.dyn_into::<js_sys::Error>() {
        Ok(error) => format!("{}: {}", error.name(), error.message()),
        Err(value) => value.as_string().unwrap_or_else(|| "unknown error".into()),
    }
}

/// The page's folder in the Origin Private File System (binary files, far beyond localStorage's
/// few megabytes).
async fn private_folder() -> Result<wasm_bindgen::JsValue, String> {
    let navigator = web_sys::window().ok_or("no window")?.navigator();
    let storage = js_sys::Reflect::get(&navigator, &"storage".into()).map_err(describe)?;
    if storage.is_undefined() {
        return Err("this browser has no storage manager".into());
    }
    call(&storage, "getDirectory", &[]).await
}

/// Writes a file in the private folder, replacing it.
pub async fn store_file(name: &str, bytes: &[u8]) -> Result<(), String> {
    let folder = private_folder().await?;
    let options = js_sys::Object::new();
    js_sys::Reflect::set(&options, &"create".into(), &true.into()).map_err(describe)?;
    let handle = call(&folder, "getFileHandle", &[name.into(), options.into()]).await?;
    let stream = call(&handle, "createWritable", &[]).await?;
    call(&stream, "write", &[js_sys::Uint8Array::from(bytes).into()]).await?;
    call(&stream, "close", &[]).await?;
    Ok(())
}

/// Reads a file of the private folder; `Ok(None)` when there is none.
pub async fn load_file(name: &str) -> Result<Option<Vec<u8>>, String> {
    let folder = private_folder().await?;
    let handle = match call(&folder, "getFileHandle", &[name.into()]).await {
        Ok(handle) => handle,
        Err(e) if e.starts_with("NotFoundError") => return Ok(None),
        Err(e) => return Err(e),
    };
    let file = call(&handle, "getFile", &[]).await?;
    let buffer = call(&file, "arrayBuffer", &[]).await?;
    Ok(Some(js_sys::Uint8Array::new(&buffer).to_vec()))
}

/// Runs `f` whenever the page is hidden or left (`visibilitychange` to hidden, `pagehide`):
/// the last moments in which saving may still finish.
pub fn on_leave(f: impl Fn() + 'static) {
    let Some(window) = web_sys::window() else { return };
    let f = std::rc::Rc::new(f);
    for (target, event) in [
        (window.clone().unchecked_into::<web_sys::EventTarget>(), "pagehide"),
        (window.document().map(|d| d.unchecked_into()).unwrap_or_else(|| window.clone().unchecked_into()), "visibilitychange"),
    ] {
        let f = f.clone();
        let callback = wasm_bindgen::closure::Closure::<dyn Fn()>::new(move || {
            if event == "pagehide" || tab_hidden() {
                f()
            }
        });
        let _ = target.add_event_listener_with_callback(event, callback.as_ref().unchecked_ref());
        // Lives as long as the page.
        callback.forget();
    }
}

/// Offers `bytes` as a file download.
pub fn download(name: &str, mime: &str, bytes: &[u8]) -> Result<(), String> {
    let array = js_sys::Uint8Array::from(bytes);
    let parts = js_sys::Array::of1(&array);
    let options = web_sys::BlobPropertyBag::new();
    options.set_type(mime);
    let blob = web_sys::Blob::new_with_u8_array_sequence_and_options(&parts, &options).map_err(|_| "cannot create the file")?;
    let url = web_sys::Url::create_object_url_with_blob(&blob).map_err(|_| "cannot create the file")?;
    let document = web_sys::window().and_then(|w| w.document()).ok_or("no document")?;
    let anchor: web_sys::HtmlAnchorElement = document.create_element("a").map_err(|_| "no anchor")?.dyn_into().map_err(|_| "no anchor")?;
    anchor.set_href(&url);
    anchor.set_download(name);
    anchor.click();
    let _ = web_sys::Url::revoke_object_url(&url);
    Ok(())
}

/// Copies text to the clipboard; false when the browser refuses.
pub async fn copy(text: &str) -> bool {
    let Some(w) = web_sys::window() else { return false };
    JsFuture::from(w.navigator().clipboard().write_text(text)).await.is_ok()
}

/// The bytes of a file the user picked.
pub async fn read_file(file: &web_sys::File) -> Result<Vec<u8>, String> {
    let buffer = JsFuture::from(file.array_buffer()).await.map_err(|_| "cannot read the file".to_string())?;
    Ok(js_sys::Uint8Array::new(&buffer).to_vec())
}
