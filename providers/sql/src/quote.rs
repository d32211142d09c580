//! Quoting of identifiers and string literals, and validation of names.
//!
//! DDL statements (`CREATE USER`, `GRANT`, `CREATE DATABASE` …) accept no bind
//! parameters, so every name and password reaches the server inside SQL text built here.
//! Quoting is what keeps a hostile name from becoming SQL; validation is a second line
//! of defence that also turns server-side surprises (silent truncation) into clear errors.

use terrace_provider::ProviderError;

/// Quotes a MariaDB/MySQL identifier (database name): wrapped in backticks, inner
/// backticks doubled. Nothing else is special inside backticks.
pub fn mysql_ident(name: &str) -> String {
    format!("`{}`", name.replace('`', "``"))
}

/// Quotes a MariaDB/MySQL string literal (user, host, password).
///
/// `'` is doubled and `\` is escaped because backslash escapes are on by default; the
/// result parses to the same value in that mode and stays a single literal even under
/// `NO_BACKSLASH_ESCAPES` (no `\'` is ever produced). NUL becomes `\0`.
pub fn mysql_string(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('\'');
    for c in value.chars() {
        match c {
            '\'' => out.push_str("''"),
            '\\' => out.push_str("\\\\"),
            '\0' => out.push_str("\\0"),
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

/// Quotes a PostgreSQL identifier: wrapped in `"`, inner `"` doubled.
pub fn pg_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Quotes a PostgreSQL string literal as an escape string `E'…'`: `'` doubled and `\`
/// doubled. Using the `E` form makes the meaning independent of the server's
/// `standard_conforming_strings` setting, so a backslash can never escape the quote.
pub fn pg_string(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 3);
    out.push_str("E'");
    for c in value.chars() {
        match c {
            '\'' => out.push_str("''"),
            '\\' => out.push_str("\\\\"),
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

/// Longest PostgreSQL identifier in bytes; longer ones are silently truncated by the
/// server, which would make the object differ from its configuration.
pub const PG_MAX_IDENT_BYTES: usize = 63;
/// Longest MariaDB/MySQL database name in characters.
pub const MYSQL_MAX_DB_CHARS: usize = 64;
/// Longest MariaDB user name in characters.
pub const MYSQL_MAX_USER_CHARS: usize = 80;
/// Longest MariaDB host part of an account in characters.
pub const MYSQL_MAX_HOST_CHARS: usize = 255;

fn check_common(kind: &str, value: &str) -> Result<(), ProviderError> {
    if value.is_empty() {
        return Err(ProviderError::Invalid(format!("{kind} must not be empty")));
    }
    if value.chars().any(char::is_control) {
        // NUL truncates C strings on the server; other control characters only make
        // names impossible to type and to read in logs.
        return Err(ProviderError::Invalid(format!(
            "{kind} {value:?} contains a control character"
        )));
    }
    if value.trim() != value {
        return Err(ProviderError::Invalid(format!(
            "{kind} {value:?} has leading or trailing whitespace"
        )));
    }
    Ok(())
}

/// Validates a PostgreSQL database or role name.
pub fn validate_pg_name(kind: &str, value: &str) -> Result<(), ProviderError> {
    check_common(kind, value)?;
    if value.len() > PG_MAX_IDENT_BYTES {
        return Err(ProviderError::Invalid(format!(
            "{kind} {value:?} is longer than {PG_MAX_IDENT_BYTES} bytes"
        )));
    }
    Ok(())
}

fn check_chars(kind: &str, value: &str, max: usize) -> Result<(), ProviderError> {
    check_common(kind, value)?;
    if value.chars().count() > max {
        return Err(ProviderError::Invalid(format!(
            "{kind} {value:?} is longer than {max} characters"
        )));
    }
    Ok(())
}

/// Validates a MariaDB/MySQL database name.
pub fn validate_mysql_db(value: &str) -> Result<(), ProviderError> {
    check_chars("database name", value, MYSQL_MAX_DB_CHARS)
}

/// Validates a MariaDB/MySQL user name.
pub fn validate_mysql_user(value: &str) -> Result<(), ProviderError> {
    check_chars("user name", value, MYSQL_MAX_USER_CHARS)
}

/// Validates the host part of a MariaDB/MySQL account (`%` for any host).
pub fn validate_mysql_host(value: &str) -> Result<(), ProviderError> {
    check_chars("user host", value, MYSQL_MAX_HOST_CHARS)
}

/// Validates a MariaDB character set or collation name. These are keywords-like names
/// that are always ASCII letters, digits and `_`; anything else is a mistake.
pub fn validate_mysql_charset(kind: &str, value: &str) -> Result<(), ProviderError> {
    if value.is_empty()
        || value.len() > 64
        || !value.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    {
        return Err(ProviderError::Invalid(format!(
            "{kind} {value:?} is not a valid name (letters, digits and _ only)"
        )));
    }
    Ok(())
}

/// Validates a password: it travels as a literal, so it only has to be free of NUL,
/// which would truncate it on the server. The value never appears in the error.
pub fn validate_password(value: &str) -> Result<(), ProviderError> {
    if value.is_empty() {
        return Err(ProviderError::Invalid("password must not be empty".into()));
    }
    if value.contains('\0') {
        return Err(ProviderError::Invalid(
            "password contains a NUL character".into(),
        ));
    }
    Ok(())
}

/// Escapes `\`, `_` and `%` in a database name for a MariaDB database-level `GRANT`,
/// where `_` and `%` are wildcards: without this, a grant on `app_1` would also cover
/// `appX1`. The escaped form is also what `mysql.db` stores.
pub fn mysql_grant_db_pattern(db: &str) -> String {
    let mut out = String::with_capacity(db.len());
    for c in db.chars() {
        if matches!(c, '\\' | '_' | '%') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOSTILE: &[&str] = &[
        "a'; DROP DATABASE x; --",
        "a`b",
        "``",
        "a\"b",
        "\"; DROP ROLE x; --",
        "a\\",
        "a\\'b",
        "\\'; DROP DATABASE x; --",
        "a\u{202E}b",
        "ａ＇ｂ＂ｃ｀",
        "'",
    ];

    /// Reads a MariaDB backtick identifier back, as the server's lexer would: returns
    /// the value and the rest of the input after the closing backtick.
    fn unquote_backtick(s: &str) -> (String, &str) {
        assert!(s.starts_with('`'));
        let mut out = String::new();
        let mut it = s[1..].char_indices().peekable();
        while let Some((i, c)) = it.next() {
            if c == '`' {
                if matches!(it.peek(), Some((_, '`'))) {
                    it.next();
                    out.push('`');
                } else {
                    return (out, &s[1 + i + 1..]);
                }
            } else {
                out.push(c);
            }
        }
        panic!("unterminated identifier");
    }

    fn unquote_double(s: &str) -> (String, &str) {
        assert!(s.starts_with('"'));
        let mut out = String::new();
        let mut it = s[1..].char_indices().peekable();
        while let Some((i, c)) = it.next() {
            if c == '"' {
                if matches!(it.peek(), Some((_, '"'))) {
                    it.next();
                    out.push('"');
                } else {
                    return (out, &s[1 + i + 1..]);
                }
            } else {
                out.push(c);
            }
        }
        panic!("unterminated identifier");
    }

    /// Lexes a single-quoted literal with backslash escapes and `''` (MariaDB default
    /// mode, and PostgreSQL `E''` strings).
    fn unquote_escaped_literal(s: &str) -> (String, &str) {
        assert!(s.starts_with('\''));
        let mut out = String::new();
        let mut it = s[1..].char_indices().peekable();
        while let Some((i, c)) = it.next() {
            match c {
                '\\' => match it.next() {
                    Some((_, '0')) => out.push('\0'),
                    Some((_, c)) => out.push(c),
                    None => panic!("dangling backslash"),
                },
                '\'' => {
                    if matches!(it.peek(), Some((_, '\''))) {
                        it.next();
                        out.push('\'');
                    } else {
                        return (out, &s[1 + i + 1..]);
                    }
                }
                c => out.push(c),
            }
        }
        panic!("unterminated literal");
    }

    /// Lexes a literal where backslash is an ordinary character (MariaDB with
    /// NO_BACKSLASH_ESCAPES): it must still end exactly at the end of our output.
    fn unquote_plain_literal(s: &str) -> (String, &str) {
        assert!(s.starts_with('\''));
        let mut out = String::new();
        let mut it = s[1..].char_indices().peekable();
        while let Some((i, c)) = it.next() {
            if c == '\'' {
                if matches!(it.peek(), Some((_, '\''))) {
                    it.next();
                    out.push('\'');
                } else {
                    return (out, &s[1 + i + 1..]);
                }
            } else {
                out.push(c);
            }
        }
        panic!("unterminated literal");
    }

    #[test]
    fn mysql_ident_round_trips_hostile_names() {
        for name in HOSTILE {
            let q = mysql_ident(name);
            let (back, rest) = unquote_backtick(&q);
            assert_eq!(&back, name);
            assert_eq!(rest, "", "quoted {name:?} ends early: {q}");
        }
        assert_eq!(mysql_ident("a`b"), "`a``b`");
    }

    #[test]
    fn mysql_string_round_trips_hostile_values() {
        for v in HOSTILE.iter().chain(&["\0x"]) {
            let q = mysql_string(v);
            let (back, rest) = unquote_escaped_literal(&q);
            assert_eq!(&back, v);
            assert_eq!(rest, "", "quoted {v:?} ends early: {q}");
            // Under NO_BACKSLASH_ESCAPES the value changes but the literal still ends
            // exactly where we meant it to: no injection either way.
            let (_, rest) = unquote_plain_literal(&q);
            assert_eq!(rest, "");
        }
        assert_eq!(mysql_string("a'b\\"), "'a''b\\\\'");
    }

    #[test]
    fn pg_quoting_round_trips_hostile_values() {
        for v in HOSTILE {
            let q = pg_ident(v);
            let (back, rest) = unquote_double(&q);
            assert_eq!(&back, v);
            assert_eq!(rest, "");
            let q = pg_string(v);
            assert!(q.starts_with("E'"));
            let (back, rest) = unquote_escaped_literal(&q[1..]);
            assert_eq!(&back, v);
            assert_eq!(rest, "");
        }
        assert_eq!(pg_ident("a\"b"), "\"a\"\"b\"");
        assert_eq!(pg_string("it's"), "E'it''s'");
    }

    #[test]
    fn validation_rejects_bad_names() {
        let long_pg = "é".repeat(32); // 64 bytes, 32 characters
        assert!(validate_pg_name("role", &long_pg).is_err());
        assert!(validate_pg_name("role", &"a".repeat(63)).is_ok());
        assert!(validate_pg_name("role", "").is_err());
        assert!(validate_pg_name("role", "a\0b").is_err());
        assert!(validate_pg_name("role", " a").is_err());
        assert!(validate_pg_name("role", "a ").is_err());
        assert!(validate_pg_name("role", "a\nb").is_err());
        assert!(validate_mysql_db(&"a".repeat(65)).is_err());
        assert!(validate_mysql_db(&"é".repeat(64)).is_ok());
        assert!(validate_mysql_user(&"a".repeat(81)).is_err());
        assert!(validate_mysql_user(&"a".repeat(80)).is_ok());
        assert!(validate_mysql_host("%").is_ok());
        assert!(validate_mysql_host("").is_err());
        // Hostile but valid names are accepted: quoting makes them safe.
        for name in HOSTILE {
            assert!(validate_pg_name("role", name).is_ok(), "{name:?}");
        }
        assert!(validate_mysql_charset("charset", "utf8mb4").is_ok());
        assert!(validate_mysql_charset("charset", "utf8; DROP").is_err());
        assert!(validate_password("x\0y").is_err());
        let err = validate_password("se\0cret").unwrap_err().to_string();
        assert!(!err.contains("cret"), "{err}");
    }

    #[test]
    fn grant_pattern_escapes_wildcards() {
        assert_eq!(mysql_grant_db_pattern("app_1%"), "app\\_1\\%");
        assert_eq!(mysql_grant_db_pattern("a\\b"), "a\\\\b");
    }
}
