//! The `text` task's text of the user's own: pasted on the page, kept in this browser's local
//! storage under its hash (the `text` key), registered with the engine before the experiment
//! that names it is built. A link with a text this browser lacks says so and loses nothing.

use super::app::AppState;
use super::driver;
use crate::tokens::{self, BOOK};
use leptos::prelude::*;

fn storage_key(id: u32) -> String {
    format!("mhc-playground/text/{id}")
}

/// Registers the text `id` names from local storage; false when this browser does not have it.
pub(super) fn load(id: u32) -> bool {
    if id == BOOK || tokens::corpus(id).is_ok() {
        return true;
    }
    driver::load(&storage_key(id)).is_some_and(|text| tokens::register_text(&text) == Ok(id))
}

/// What the experiment's text is, in a few words.
fn describe(id: u32) -> String {
    match tokens::corpus(id) {
        Ok(_) if id == BOOK => "Cicero, De finibus, book I (built in)".into(),
        Ok(corpus) => format!("your text: {} characters, {} different (text={id})", corpus.tokens.len(), corpus.vocabulary.len()),
        Err(_) => format!("text={id}: a text of the link's author that this browser does not have; paste it below to reproduce the run"),
    }
}

/// Trains the `text` task on `text` from now on: checked, kept in the browser, named in the link.
fn use_text(state: AppState, text: &str) {
    let id = match tokens::register_text(text) {
        Ok(id) => id,
        Err(e) => return state.message.set(Some(format!("This text cannot be used: {e}."))),
    };
    let kept = driver::try_save(&storage_key(id), text);
    if state.config.with_untracked(|c| c.task) != crate::config::Task::Text {
        state.set_key("task", "text");
    }
    state.set_key("text", &id.to_string());
    if !kept {
        state
            .message
            .set(Some("The text is used for this visit only: the browser's storage is full or off, so a reload will not find it.".into()));
    }
}

#[component]
pub(super) fn OwnTextInput(state: AppState, label: &'static str, help_id: String) -> impl IntoView {
    let draft = RwSignal::new(String::new());
    let id = move || state.config.with(|c| c.text);
    view! {
        <div class="own-text" role="group" aria-label=label aria-describedby=help_id>
            <p data-testid="text-status" class=move || if tokens::corpus(id()).is_ok() { "" } else { "notice" }>{move || describe(id())}</p>
            <details>
                <summary>"Paste your own text"</summary>
                <textarea aria-label="Your own text" rows=5 placeholder=format!("at least {} characters of plain text", tokens::MIN_TEXT_CHARS)
                    prop:value=move || draft.get() on:input=move |ev| draft.set(event_target_value(&ev))></textarea>
                <p class="help">{move || format!("{} characters", draft.with(|t| t.chars().count()))}</p>
                <button on:click=move |_| use_text(state, &draft.get_untracked())>"Train on this text"</button>
            </details>
            <Show when=move || id() != BOOK>
                <button on:click=move |_| state.set_key("text", "0")>"Back to the book"</button>
            </Show>
        </div>
    }
}
