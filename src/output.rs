//! Terminal output policy: colour, and scrubbing secrets from anything we print.

use std::io::IsTerminal;

/// True when stdout should get ANSI colour: a terminal, `NO_COLOR` unset (any value,
/// even empty, disables colour, per no-color.org), and no `--no-color`.
pub fn use_color(no_color_flag: bool) -> bool {
    !no_color_flag && std::env::var_os("NO_COLOR").is_none() && std::io::stdout().is_terminal()
}

/// Replaces every known secret in a message before it is printed. The last line of
/// defence: providers already keep secrets out of their errors, but a server may echo
/// a statement back.
#[derive(Debug, Clone, Default)]
pub struct Redactor {
    secrets: Vec<String>,
}

impl Redactor {
    /// A redactor for these secret values (empty and very short values are ignored:
    /// masking every "a" would make messages unreadable and protect nothing).
    pub fn new(secrets: impl IntoIterator<Item = String>) -> Self {
        let mut secrets: Vec<String> = secrets.into_iter().filter(|s| s.len() >= 4).collect();
        // Longest first, so a secret containing another is masked whole.
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        secrets.dedup();
        Redactor { secrets }
    }

    /// Adds more secrets (e.g. generated passwords read from state).
    pub fn extend(&mut self, more: impl IntoIterator<Item = String>) {
        let all = std::mem::take(&mut self.secrets).into_iter().chain(more);
        *self = Redactor::new(all);
    }

    /// `text` with every secret replaced by `(sensitive value)`.
    pub fn scrub(&self, text: &str) -> String {
        terrace_provider::scrub(text, &self.secrets)
    }
}

/// Secrets known to the running command, for [`scrub_report`]. Set once the
/// configuration (and state) are loaded.
static GLOBAL: std::sync::Mutex<Option<Redactor>> = std::sync::Mutex::new(None);

/// Makes `r` the redactor used for the final error report.
pub fn install_global(r: &Redactor) {
    if let Ok(mut g) = GLOBAL.lock() {
        *g = Some(r.clone());
    }
}

/// Renders an error report with every known secret masked.
pub fn scrub_report(report: &miette::Report) -> String {
    global_redactor().scrub(&format!("{report:?}"))
}

/// The redactor [`install_global`] made the last resort (none: masks nothing).
pub fn global_redactor() -> Redactor {
    GLOBAL
        .lock()
        .ok()
        .and_then(|g| g.clone())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scrub_masks_every_secret_longest_first() {
        let r = Redactor::new([
            "hunter2".to_string(),
            "hunter2-long".to_string(),
            "x".into(),
        ]);
        assert_eq!(
            r.scrub("pw hunter2-long and hunter2, x"),
            "pw (sensitive value) and (sensitive value), x"
        );
    }
}
