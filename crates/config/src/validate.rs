//! Validation of names that end up inside SQL statements.
//!
//! Providers quote identifiers, but names are also restricted here so that hostile or
//! confusable names (quotes, backticks, semicolons, unicode look-alikes) never get that
//! far, and the user learns about them with a location at load time.

use crate::spec::Engine;

/// Which SQL name is being checked (limits differ).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SqlName {
    Database,
    User,
}

/// Checks an SQL database or user name; the error is a sentence for the message.
pub(crate) fn sql_name(name: &str, engine: Engine, what: SqlName) -> Result<(), String> {
    let max = match (engine, what) {
        (Engine::Postgres, _) => 63,
        (_, SqlName::Database) => 64,
        (_, SqlName::User) => 80,
    };
    if name.is_empty() {
        return Err("the name is empty".into());
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '_'))
    {
        return Err(format!("the name contains {}", describe_char(c)));
    }
    if name.starts_with(|c: char| c.is_ascii_digit()) {
        return Err("the name starts with a digit".into());
    }
    if name.len() > max {
        return Err(format!(
            "the name is {} bytes long, more than the {max} {engine} allows",
            name.len()
        ));
    }
    Ok(())
}

/// The help text for an invalid SQL name.
pub(crate) fn sql_name_help(engine: Engine, what: SqlName) -> String {
    let max = match (engine, what) {
        (Engine::Postgres, _) => 63,
        (_, SqlName::Database) => 64,
        (_, SqlName::User) => 80,
    };
    format!(
        "use only ASCII letters, digits and underscores, starting with a letter or underscore, at most {max} bytes (e.g. wp_calibre_web)"
    )
}

fn describe_char(c: char) -> String {
    match c {
        ' ' => "a space".into(),
        '\'' => "a single quote".into(),
        '"' => "a double quote".into(),
        '`' => "a backtick".into(),
        ';' => "a semicolon".into(),
        '-' => "a hyphen".into(),
        c if !c.is_ascii() => format!("the non-ASCII character '{c}' (U+{:04X})", c as u32),
        c if c.is_control() => format!("a control character (U+{:04X})", c as u32),
        c => format!("the character '{c}'"),
    }
}

/// Privileges are keywords such as `ALL`, `SELECT` or `ALL PRIVILEGES`: uppercase
/// letters separated by single spaces.
pub(crate) fn privilege(p: &str) -> Result<String, String> {
    let up = p.to_ascii_uppercase();
    let ok = !up.is_empty()
        && up
            .split(' ')
            .all(|w| !w.is_empty() && w.chars().all(|c| c.is_ascii_uppercase()));
    if ok {
        Ok(up)
    } else {
        Err(format!("invalid privilege \"{p}\""))
    }
}

/// Charset and collation names: ASCII letters, digits and underscores.
pub(crate) fn charset_name(s: &str) -> bool {
    !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Docker container, volume and network names: `[a-zA-Z0-9][a-zA-Z0-9_.-]+`, as the
/// Docker engine requires (at least two characters).
pub(crate) fn docker_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("the name is empty".into());
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')))
    {
        return Err(format!("the name contains {}", describe_char(c)));
    }
    if !name.starts_with(|c: char| c.is_ascii_alphanumeric()) {
        return Err("the name does not start with a letter or digit".into());
    }
    if name.len() < 2 {
        return Err("the name is a single character; Docker needs at least two".into());
    }
    Ok(())
}

/// The help text for an invalid Docker name.
pub(crate) const DOCKER_NAME_HELP: &str =
    "Docker names start with an ASCII letter or digit and contain only letters, digits, `_`, `.` and `-` (at least two characters, e.g. client-alice)";

/// Image references such as `nginx:1.27`, `registry.example:5000/team/app@sha256:...`:
/// no spaces, quotes or other characters Docker does not accept.
pub(crate) fn image_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("the image name is empty".into());
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-' | '/' | ':' | '@')))
    {
        return Err(format!("the image name contains {}", describe_char(c)));
    }
    if !name.starts_with(|c: char| c.is_ascii_alphanumeric()) {
        return Err("the image name does not start with a letter or digit".into());
    }
    Ok(())
}

/// Restart policies: `no`, `always`, `unless-stopped`, `on-failure` or `on-failure:N`.
pub(crate) fn restart_policy(p: &str) -> bool {
    match p.strip_prefix("on-failure:") {
        Some(n) => !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()),
        None => RESTART_POLICIES.contains(&p),
    }
}

/// The restart policies Docker knows (`on-failure` also takes `:N`).
pub(crate) const RESTART_POLICIES: &[&str] = &["no", "always", "unless-stopped", "on-failure"];
