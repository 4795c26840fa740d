//! The browser page: mounts the Leptos app (src/ui). Natively there is nothing to run.

#[cfg(target_arch = "wasm32")]
fn main() {
    mhc_playground::ui::mount();
}

#[cfg(not(target_arch = "wasm32"))]
fn main() {
    eprintln!("the page runs in the browser: build it with `trunk build --release` (see README.md)");
    std::process::exit(2);
}
