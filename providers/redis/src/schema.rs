//! The schemas of `redis_user` and `redis_config`, and the checks of their names.
//!
//! The attribute names here are the contract with the config crate, which lowers a
//! tenant's `redis` block and a Redis service's `settings` into exactly these names.

use terrace_provider::{AttrSchema, Invalid, ResourceSchema, Subject, Value};

/// Type name of a Redis ACL user confined to a key prefix.
pub const USER: &str = "redis_user";

/// Type name of a Redis server's settings (`CONFIG SET`).
pub const CONFIG: &str = "redis_config";

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

/// A setting name: lower-case letters, digits and `-` (`CONFIG GET` takes globs, so
/// anything else could read or match settings nobody named).
pub fn check_setting_name(name: &str) -> Result<(), Invalid> {
    let ok = !name.is_empty()
        && name.len() <= MAX_LEN
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if ok {
        return Ok(());
    }
    Err(Invalid {
        message: format!("invalid Redis setting name \"{}\"", name.escape_debug()),
        label: "not a Redis setting name".into(),
        help: "Redis settings are named in lower case with `-`, e.g. \"maxmemory-policy\" (see `CONFIG GET *`)".into(),
    })
}

const USER_ATTRS: &[AttrSchema] = &[
    // ACL users cannot be renamed: a new name is a new user.
    AttrSchema::plain("name")
        .string("\"wp_client\"")
        .required()
        .force_new()
        .doc("the ACL user name")
        .validate(check_name),
    // What the live user is confined to is compared as `key_patterns` and
    // `channel_patterns` (which the prefix sets): compared again here, a widened pattern
    // would also read as a prefix changed to nothing.
    AttrSchema::plain("prefix")
        .string("\"wp_client:\"")
        .required()
        .unobservable()
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
    // Redis has no per-user client limit: this is the tenant's share of the server's
    // `maxclients` in the connection budget, checked by the plan, not enforced by Redis.
    AttrSchema::plain("connection_limit")
        .int(0, 1_000_000, "20")
        .unobservable()
        .doc("the clients the tenant may open, counted against the server's maxclients"),
    // Deleting the user also deletes its keys (SCAN + UNLINK of `<prefix>*`).
    AttrSchema::plain("purge_keys")
        .bool()
        .unobservable()
        .doc("delete the tenant's keys when the user is deleted"),
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
    // Observed only when `purge_keys` is set: how many keys a delete would remove.
    // Never desired nor stored, so it is shown, not diffed.
    AttrSchema::plain("key_count").output(),
];

/// Every key of a `settings` map is a setting name.
fn check_settings(v: &Value, _at: &Subject<'_>) -> Result<(), Invalid> {
    v.as_object()
        .into_iter()
        .flat_map(|m| m.keys())
        .try_for_each(|k| check_setting_name(k))
}

const CONFIG_ATTRS: &[AttrSchema] = &[
    // Setting name => value, in the form `CONFIG GET` reports it (memory in bytes).
    AttrSchema::plain("settings")
        .doc("setting name => value, applied with CONFIG SET")
        .validate(check_settings),
];

/// The resource types this provider implements: `redis_user`, `redis_config`.
pub static SCHEMAS: &[ResourceSchema] = &[
    ResourceSchema {
        type_name: USER,
        description: "Redis user",
        import_id: &["name"],
        adopt_existing: false,
        carries_data: false,
        lives_in: &[],
        // Its keys go with it, uncopied, when it says so.
        drops_data_if: Some("purge_keys"),
        delete_keeps_object: false,
        attrs: USER_ATTRS,
    },
    // A server's settings always exist: creating the resource only sets them.
    ResourceSchema {
        type_name: CONFIG,
        description: "Redis settings",
        import_id: &[],
        adopt_existing: true,
        carries_data: false,
        lives_in: &[],
        drops_data_if: None,
        delete_keeps_object: false,
        attrs: CONFIG_ATTRS,
    },
];
