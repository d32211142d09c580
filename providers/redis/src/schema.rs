//! The schema of `redis_user`, and the checks of its names.
//!
//! The attribute names here are the contract with the config crate, which lowers a
//! tenant's `redis` block into exactly these names.

use terrace_provider::{AttrSchema, Invalid, ResourceSchema, Subject, Value};

/// Type name of a Redis ACL user confined to a key prefix.
pub const USER: &str = "redis_user";

/// Longest user name or prefix accepted (Redis has no limit; this keeps ACL lines and
/// key names sane).
const MAX_LEN: usize = 64;

/// A user name: ASCII letters, digits, `_`, `-`, `.`; not `default` (Redis' own user).
fn check_name(v: &Value, _at: &Subject<'_>) -> Result<(), Invalid> {
    let s = v.as_str().unwrap_or_default();
    let bad = |why: &str| {
        Invalid {
        message: format!("invalid Redis user name \"{}\": {why}", s.escape_debug()),
        label: "not a valid Redis user name".into(),
        help: "a Redis user name has 1 to 64 ASCII letters, digits, `_`, `-` or `.`, and is not \"default\"".into(),
    }
    };
    if s.is_empty() || s.len() > MAX_LEN {
        return Err(bad("it must have 1 to 64 characters"));
    }
    if let Some(c) = s
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')))
    {
        return Err(bad(&format!("{:?} is not allowed", c)));
    }
    if s == "default" {
        return Err(bad("\"default\" is Redis' built-in user"));
    }
    Ok(())
}

/// A key prefix: it becomes the glob patterns `~<prefix>*` and `&<prefix>*`, so glob
/// characters (`*?[]\`), spaces and anything else that could widen or split the pattern
/// are refused.
fn check_prefix(v: &Value, _at: &Subject<'_>) -> Result<(), Invalid> {
    let s = v.as_str().unwrap_or_default();
    let bad = |why: &str| {
        Invalid {
        message: format!("invalid Redis key prefix \"{}\": {why}", s.escape_debug()),
        label: "not a valid key prefix".into(),
        help: "a key prefix has 1 to 64 ASCII letters, digits, `_`, `-`, `.`, `:` or `/`, e.g. \"wp_client:\"; glob characters would let the tenant reach other keys".into(),
    }
    };
    if s.is_empty() || s.len() > MAX_LEN {
        return Err(bad("it must have 1 to 64 characters"));
    }
    if let Some(c) = s
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | ':' | '/')))
    {
        return Err(bad(&format!("{:?} is not allowed", c)));
    }
    Ok(())
}

const USER_ATTRS: &[AttrSchema] = &[
    // ACL users cannot be renamed: a new name is a new user.
    AttrSchema::plain("name")
        .string("\"wp_client\"")
        .required()
        .force_new()
        .doc("the ACL user name")
        .validate(check_name),
    AttrSchema::plain("prefix")
        .string("\"wp_client:\"")
        .required()
        .doc("the key and channel prefix the user is confined to")
        .validate(check_prefix),
    // Generated when unset; Redis keeps only its SHA-256, so it is kept in state and
    // checked against the live hash (`password_status`).
    AttrSchema::plain("password")
        .string("var.redis_password")
        .sensitive()
        .computed()
        .unobservable()
        .doc("the user's password (generated when unset)"),
    // Audit attributes: the provider sets their desired value and observe reports what
    // it finds, so a disabled user, a widened pattern or command set and a password
    // changed by hand are drift that apply repairs.
    AttrSchema::plain("enabled").output(),
    AttrSchema::plain("key_patterns").output(),
    AttrSchema::plain("channel_patterns").output(),
    AttrSchema::plain("commands").output(),
    // ACL SETUSER sets the password with the user, in one command: see sql_user.
    AttrSchema::plain("password_status")
        .output()
        .proves_ownership("its password is not the one terrace generated for it"),
];

/// The resource types this provider implements: `redis_user`.
pub static SCHEMAS: &[ResourceSchema] = &[ResourceSchema {
    type_name: USER,
    description: "Redis user",
    import_id: &["name"],
    adopt_existing: false,
    attrs: USER_ATTRS,
}];
