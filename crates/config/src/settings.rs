//! The `terrace { ... }` block: settings of terrace itself rather than of the systems
//! it manages. Today that is where the state lives:
//!
//! ```hcl
//! terrace {
//!   backend "pg" {
//!     url   = "pg://terrace@db.internal/terrace"
//!     state = "farm-prod"
//!   }
//! }
//! ```
//!
//! The backend is needed before anything else is evaluated (even `terrace state list`
//! reads it), so its values are literal strings, as Terraform requires of its backend
//! block: no variables, and never a password (that comes from `TERRACE_BACKEND`,
//! `PGPASSWORD` or `~/.pgpass`, so it is not committed with the configuration).

use hcl::edit::expr::Expression;

use crate::diagnostics::{ConfigError, ErrorKind};
use crate::syntax::{RawAttr, RawBlock};

/// Where the configuration says the state lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BackendSetting {
    /// A local file; `path` is relative to the project directory (default
    /// `terrace.state.json`).
    Local {
        /// The state file, if not the default.
        path: Option<String>,
    },
    /// A PostgreSQL database.
    Pg {
        /// `pg://USER@HOST[:PORT]/DATABASE`, without a password.
        url: String,
        /// The state's name (default: the project directory's name).
        state: Option<String>,
    },
}

/// The backend of the `terrace` blocks (at most one `backend` among them), checked.
pub(crate) fn backend(
    settings: &[RawBlock],
    errors: &mut Vec<ConfigError>,
) -> Option<BackendSetting> {
    let backends: Vec<&RawBlock> = settings
        .iter()
        .flat_map(|b| b.blocks.iter().filter(|n| n.kind == "backend"))
        .collect();
    for extra in backends.iter().skip(1) {
        errors.push(
            ConfigError::new(ErrorKind::Duplicate, "more than one backend")
                .at(&extra.head_loc, "another backend")
                .at(&backends[0].head_loc, "first backend")
                .help("the state lives in one place: keep one backend block"),
        );
    }
    let block = backends.first()?;
    let (label, label_loc) = block.labels.first()?;
    let allowed: &[&str] = match label.as_str() {
        "local" => &["path"],
        "pg" => &["url", "state"],
        _ => {
            errors.push(
                ConfigError::new(
                    ErrorKind::InvalidLabel,
                    format!("unknown backend type \"{label}\""),
                )
                .at(label_loc, "not a backend type")
                .help("backend types: \"local\" (a file, the default) and \"pg\" (PostgreSQL)"),
            );
            return None;
        }
    };
    let mut ok = true;
    for a in block
        .attrs
        .iter()
        .filter(|a| !allowed.contains(&a.key.as_str()))
    {
        ok = false;
        errors.push(
            ConfigError::new(
                ErrorKind::UnknownAttribute,
                format!("a \"{label}\" backend has no attribute \"{}\"", a.key),
            )
            .at(&a.key_loc, "not allowed here")
            .help(format!(
                "attributes of a \"{label}\" backend: {}",
                allowed.join(", ")
            )),
        );
    }
    let mut value = |name: &str| block.attr(name).and_then(|a| literal(a, errors, &mut ok));
    let setting = match label.as_str() {
        "local" => BackendSetting::Local {
            path: value("path"),
        },
        _ => {
            let state = value("state");
            let Some(url) = value("url") else {
                if block.attr("url").is_none() {
                    errors.push(
                        ConfigError::new(
                            ErrorKind::MissingAttribute,
                            "a \"pg\" backend needs a url",
                        )
                        .at(&block.head_loc, "no url")
                        .help("url = \"pg://USER@HOST[:PORT]/DATABASE\" (the password goes in PGPASSWORD or ~/.pgpass)"),
                    );
                }
                return None;
            };
            BackendSetting::Pg { url, state }
        }
    };
    if let (BackendSetting::Pg { url, .. }, Some(attr)) = (&setting, block.attr("url")) {
        if !url.starts_with("pg://")
            && !url.starts_with("postgres://")
            && !url.starts_with("postgresql://")
        {
            ok = false;
            errors.push(
                ConfigError::new(ErrorKind::InvalidValue, "not a PostgreSQL URL")
                    .at(&attr.loc, "expected pg://USER@HOST[:PORT]/DATABASE")
                    .help("write the URL as pg://USER@HOST[:PORT]/DATABASE"),
            );
        } else if has_password(url) {
            ok = false;
            errors.push(
                ConfigError::new(
                    ErrorKind::InvalidValue,
                    "the backend URL holds a password, which would be committed with the configuration",
                )
                .at(&attr.loc, "remove the password from here")
                .help("give the password in PGPASSWORD or ~/.pgpass, or put the whole URL in TERRACE_BACKEND"),
            );
        }
    }
    ok.then_some(setting)
}

/// Whether a URL carries a password (`user:password@`).
pub fn has_password(url: &str) -> bool {
    password_of(url).is_some()
}

/// The password of a URL (`user:password@`), if it has one.
fn password_of(url: &str) -> Option<&str> {
    let rest = url.split_once("://").map(|(_, r)| r).unwrap_or(url);
    let authority = rest.split(['/', '?']).next().unwrap_or_default();
    let (userinfo, _) = authority.rsplit_once('@')?;
    userinfo.split_once(':').map(|(_, pw)| pw)
}

/// Passwords written into backend URLs, to be masked wherever an error quotes them.
pub(crate) fn secrets(settings: &[RawBlock]) -> Vec<String> {
    settings
        .iter()
        .flat_map(|b| &b.blocks)
        .filter_map(|b| b.attr("url"))
        .filter_map(|a| match &a.expr {
            Expression::String(s) => password_of(s.value()).map(str::to_string),
            _ => None,
        })
        .filter(|p| !p.is_empty())
        .collect()
}

/// The value of an attribute written as a literal string.
fn literal(attr: &RawAttr, errors: &mut Vec<ConfigError>, ok: &mut bool) -> Option<String> {
    if let Expression::String(s) = &attr.expr {
        return Some(s.value().to_string());
    }
    *ok = false;
    errors.push(
        ConfigError::new(
            ErrorKind::WrongType,
            format!("backend {} must be a literal string", attr.key),
        )
        .at(&attr.loc, "not a literal string")
        .help("the backend is read before variables exist; write the value itself in quotes, or set TERRACE_BACKEND"),
    );
    None
}
