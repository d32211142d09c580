//! SQL statements built from quoted pieces, with a redacted twin for logs, and the
//! scrubbing of secrets out of server messages.

use terrace_provider::Secret;

pub(crate) use terrace_provider::REDACTED;

/// One DDL statement.
///
/// It is built in two copies at once: `sql`, sent to the server, and `shown`, where every
/// secret is replaced by [`REDACTED`]; only `shown` may ever be logged. Pieces must come
/// from the `quote` module, from keywords in this crate, or from integers.
#[derive(Debug, Clone, Default)]
pub(crate) struct Stmt {
    sql: String,
    shown: String,
    secrets: Vec<Secret>,
    /// Server error codes (MariaDB error numbers, PostgreSQL SQLSTATEs) that mean "already
    /// done" for this statement, e.g. revoking a grant whose database is gone.
    ignore: &'static [&'static str],
    /// For a statement that sets a password as a hash computed here: the fingerprint
    /// of that hash (see [`crate::password::fingerprint`]), recorded in state so that a
    /// later plan recognises it without recomputing the hash.
    fingerprint: Option<String>,
}

impl Stmt {
    /// Starts a statement with a keyword.
    pub(crate) fn new(keyword: &'static str) -> Self {
        Stmt::default().kw(keyword)
    }

    /// Appends SQL keywords (fixed text of this crate).
    pub(crate) fn kw(mut self, text: &'static str) -> Self {
        self.sql.push_str(text);
        self.shown.push_str(text);
        self
    }

    /// Appends an already quoted identifier or literal, or a formatted integer.
    pub(crate) fn q(mut self, quoted: &str) -> Self {
        self.sql.push_str(quoted);
        self.shown.push_str(quoted);
        self
    }

    /// Appends a quoted secret literal: the real text goes to the server, the log copy
    /// gets a placeholder, and the secret is remembered for scrubbing error messages.
    pub(crate) fn secret(mut self, quoted: String, secret: &Secret) -> Self {
        self.sql.push_str(&quoted);
        self.shown.push('\'');
        self.shown.push_str(REDACTED);
        self.shown.push('\'');
        self.secrets.push(secret.clone());
        self
    }

    /// Remembers one more secret for scrubbing error messages, one the statement does
    /// not carry itself (the password behind a hash it sends).
    pub(crate) fn also_hide(mut self, secret: &Secret) -> Self {
        self.secrets.push(secret.clone());
        self
    }

    /// Records the fingerprint of the password hash this statement sets.
    pub(crate) fn with_fingerprint(mut self, fingerprint: String) -> Self {
        self.fingerprint = Some(fingerprint);
        self
    }

    /// The fingerprint of the password hash this statement sets, if it sets one.
    pub(crate) fn fingerprint(&self) -> Option<&str> {
        self.fingerprint.as_deref()
    }

    /// Treats these server error codes as success.
    pub(crate) fn ignoring(mut self, codes: &'static [&'static str]) -> Self {
        self.ignore = codes;
        self
    }

    /// The text sent to the server. Never log it.
    pub(crate) fn sql(&self) -> &str {
        &self.sql
    }

    /// The text safe to log.
    pub(crate) fn shown(&self) -> &str {
        &self.shown
    }

    /// Secrets the statement carries.
    pub(crate) fn secrets(&self) -> &[Secret] {
        &self.secrets
    }

    /// Error codes to ignore.
    pub(crate) fn ignored(&self) -> &'static [&'static str] {
        self.ignore
    }
}

/// Replaces every occurrence of each secret — raw, and in the quoted forms the engines
/// echo — with [`REDACTED`], in case a server repeats part of a statement in an error.
pub(crate) fn scrub<'a>(message: &str, secrets: impl IntoIterator<Item = &'a Secret>) -> String {
    let mut forms: Vec<String> = Vec::new();
    for s in secrets {
        let raw = s.expose();
        if raw.is_empty() {
            continue;
        }
        forms.push(raw.to_string());
        forms.push(raw.replace('\'', "''"));
        forms.push(raw.replace('\\', "\\\\").replace('\'', "''"));
        forms.push(raw.replace('\\', "\\\\").replace('\'', "\\'"));
    }
    terrace_provider::scrub(message, forms)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quote;

    #[test]
    fn shown_copy_hides_the_secret() {
        let pw = Secret::new("hunter2'x");
        let s = Stmt::new("ALTER USER ")
            .q(&quote::mysql_string("bob"))
            .kw(" IDENTIFIED BY ")
            .secret(quote::mysql_string(pw.expose()), &pw);
        assert!(s.sql().contains("hunter2''x"));
        assert!(!s.shown().contains("hunter2"));
        assert_eq!(
            s.shown(),
            "ALTER USER 'bob' IDENTIFIED BY '(sensitive value)'"
        );
    }

    #[test]
    fn scrub_removes_raw_and_quoted_forms() {
        let pw = Secret::new("p'a\\ss");
        let msg = "near 'p''a\\\\ss' and p'a\\ss and p\\'a\\\\ss";
        let out = scrub(msg, [&pw]);
        assert!(!out.contains("p'a"), "{out}");
        assert!(!out.contains("a\\\\ss"), "{out}");
        assert!(!out.contains("ss'"), "{out}");
        assert_eq!(scrub("nothing here", [&Secret::new("")]), "nothing here");
    }
}
