//! Plan renderers: text for terminals and pull requests, JSON for machines.

mod json;
mod text;

pub use json::{render_json, JSON_FORMAT_VERSION};
pub use text::{render_text, TextOptions};
