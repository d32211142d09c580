//! Canonical forms of desired attributes.
//!
//! The planner compares desired and observed attributes by plain JSON equality, so every
//! value that Docker could spell in more than one way gets exactly one spelling here,
//! and `observe` reports the live object in the same spelling. Defaults that Docker
//! applies silently (restart policy "no", healthcheck intervals) are written out, so the
//! canonical form describes the object completely.
//!
//! Error messages name keys, never values: `env` values may be secrets.

use std::collections::BTreeMap;
use std::net::IpAddr;

use serde_json::{json, Map};
use terrace_provider::{Attrs, ProviderError, ProviderResult, Value};

use crate::schema::{CONTAINER, EXTRA_LIMITS, IMAGE, NETWORK, VOLUME};

/// Labels under this prefix are terrace's own (`terrace.managed`, `terrace.address`).
pub const LABEL_PREFIX: &str = "terrace.";
/// Marks every object terrace creates; observe lists only objects carrying it.
pub const LABEL_MANAGED: &str = "terrace.managed";
/// The resource address that created the object.
pub const LABEL_ADDRESS: &str = "terrace.address";

/// Healthcheck defaults, as Docker applies them when a field is zero.
const HEALTH_INTERVAL_NS: i64 = 30_000_000_000;
const HEALTH_TIMEOUT_NS: i64 = 30_000_000_000;
const HEALTH_RETRIES: i64 = 3;

/// The value `image_id` takes in the configuration and in state: "whatever id the image
/// named `image` has now". Observe reports it while the container runs that id, and
/// the container's real (old) id once the name points elsewhere, so a re-tagged image
/// plans a replacement because of `image_id` and an unchanged one plans nothing.
pub fn image_id_placeholder(image: &str) -> String {
    format!("(id of {image})")
}

fn invalid(type_name: &str, key: &str, why: impl std::fmt::Display) -> ProviderError {
    ProviderError::Invalid(format!("{type_name}: attribute {key:?}: {why}"))
}

/// Normalises `attrs` of `type_name` in place; idempotent.
pub fn normalize(type_name: &str, attrs: &mut Attrs) -> ProviderResult<()> {
    // An unset optional attribute may arrive as null: it means absent.
    attrs.retain(|_, v| !v.is_null());
    match type_name {
        IMAGE => normalize_image(attrs),
        NETWORK => {
            name(NETWORK, attrs, 1)?;
            default_str(NETWORK, attrs, "driver", "bridge")?;
            default_bool(NETWORK, attrs, "internal", false)
        }
        VOLUME => {
            name(VOLUME, attrs, 2)?;
            default_str(VOLUME, attrs, "driver", "local")
        }
        CONTAINER => normalize_container(attrs),
        other => Err(crate::unknown_type(other)),
    }
}

fn normalize_image(attrs: &mut Attrs) -> ProviderResult<()> {
    let n = required_str(IMAGE, attrs, "name")?;
    attrs.insert("name".into(), image_ref(IMAGE, "name", &n)?.into());
    default_str(IMAGE, attrs, "pull", "if_missing")?;
    let pull = str_of(IMAGE, attrs, "pull")?.unwrap_or_default();
    if !matches!(pull.as_str(), "never" | "if_missing" | "always") {
        return Err(invalid(
            IMAGE,
            "pull",
            format!("{pull:?} is not one of \"never\", \"if_missing\", \"always\""),
        ));
    }
    if let Some(src) = str_of(IMAGE, attrs, "source")? {
        if src.is_empty() {
            return Err(invalid(IMAGE, "source", "must be a path to a tarball"));
        }
    }
    if attrs.contains_key("cmd") {
        let cmd = str_list(IMAGE, attrs, "cmd")?;
        attrs.insert("cmd".into(), json!(cmd));
    }
    Ok(())
}

fn normalize_container(attrs: &mut Attrs) -> ProviderResult<()> {
    const KNOWN: &[&str] = &[
        "name",
        "image",
        "image_id",
        "command",
        "env",
        "labels",
        "ports",
        "mounts",
        "networks",
        "memory",
        "restart",
        "healthcheck",
        "running",
        "paused",
        "init",
        "stop_signal",
        "stop_timeout",
        "id",
        EXTRA_LIMITS,
    ];
    if let Some(k) = attrs.keys().find(|k| !KNOWN.contains(&k.as_str())) {
        return Err(invalid(CONTAINER, k, "unknown attribute"));
    }
    name(CONTAINER, attrs, 1)?;
    let image = image_ref(
        CONTAINER,
        "image",
        &required_str(CONTAINER, attrs, "image")?,
    )?;
    attrs.insert("image".into(), image.clone().into());
    let placeholder = image_id_placeholder(&image);
    match attrs.get("image_id") {
        None => {}
        Some(Value::String(s)) if *s == placeholder => {}
        Some(_) => {
            return Err(invalid(
                CONTAINER,
                "image_id",
                "is computed from `image`; set `image` instead",
            ))
        }
    }
    attrs.insert("image_id".into(), placeholder.into());

    if attrs.contains_key("command") {
        let cmd = str_list(CONTAINER, attrs, "command")?;
        if cmd.is_empty() {
            // An empty command means "the image's": the same as leaving it unset.
            attrs.remove("command");
        } else {
            attrs.insert("command".into(), json!(cmd));
        }
    }
    for key in ["env", "labels"] {
        if attrs.contains_key(key) {
            let map = str_map(CONTAINER, attrs, key)?;
            for k in map.keys() {
                if k.is_empty() || k.contains('=') || k.contains('\0') {
                    return Err(invalid(CONTAINER, key, format!("invalid key {k:?}")));
                }
                if key == "labels" && k.starts_with(LABEL_PREFIX) {
                    return Err(invalid(
                        CONTAINER,
                        key,
                        format!("{k:?}: labels starting with {LABEL_PREFIX:?} are terrace's own"),
                    ));
                }
            }
            if map.values().any(|v| v.contains('\0')) {
                return Err(invalid(CONTAINER, key, "values must not contain NUL"));
            }
            attrs.insert(key.into(), json!(map));
        }
    }
    if attrs.contains_key("ports") {
        let ports = list(CONTAINER, attrs, "ports")?
            .iter()
            .map(|p| match p {
                Value::String(s) => port(s),
                Value::Number(n) => port(&n.to_string()),
                _ => Err(invalid(CONTAINER, "ports", "entries must be strings")),
            })
            .collect::<ProviderResult<Vec<_>>>()?;
        attrs.insert("ports".into(), json!(sorted_unique(ports)));
    }
    if attrs.contains_key("mounts") {
        let m = mounts(list(CONTAINER, attrs, "mounts")?)?;
        attrs.insert("mounts".into(), Value::Array(m));
    }
    if attrs.contains_key("networks") {
        let n = networks(list(CONTAINER, attrs, "networks")?)?;
        if n.is_empty() {
            // No networks means Docker's default one: the same as leaving it unset.
            attrs.remove("networks");
        } else {
            attrs.insert("networks".into(), Value::Array(n));
        }
    }
    if let Some(v) = attrs.get("memory") {
        let bytes = memory(v).map_err(|why| invalid(CONTAINER, "memory", why))?;
        attrs.insert("memory".into(), bytes.into());
    }
    // None set outside terrace: checked on every plan (see the schema).
    attrs.insert(EXTRA_LIMITS.into(), json!([]));
    default_str(CONTAINER, attrs, "restart", "no")?;
    let r = str_of(CONTAINER, attrs, "restart")?.unwrap_or_default();
    attrs.insert("restart".into(), restart(&r)?.into());
    if let Some(h) = attrs.get("healthcheck") {
        let h = healthcheck(h)?;
        attrs.insert("healthcheck".into(), h);
    }
    match attrs.get("init") {
        None | Some(Value::Bool(_)) => {}
        Some(_) => return Err(invalid(CONTAINER, "init", "must be true or false")),
    }
    if let Some(sig) = str_of(CONTAINER, attrs, "stop_signal")? {
        let sig = stop_signal(&sig).map_err(|why| invalid(CONTAINER, "stop_signal", why))?;
        attrs.insert("stop_signal".into(), sig.into());
    }
    if let Some(v) = attrs.get("stop_timeout") {
        let secs = stop_timeout_s(v).map_err(|why| invalid(CONTAINER, "stop_timeout", why))?;
        attrs.insert("stop_timeout".into(), stop_timeout_string(secs).into());
    }
    default_bool(CONTAINER, attrs, "running", true)?;
    // Nobody asks for a paused container; observing it makes a pause by hand drift.
    default_bool(CONTAINER, attrs, "paused", false)
}

// ---- scalar helpers -------------------------------------------------------------------

fn required_str(t: &str, attrs: &Attrs, key: &str) -> ProviderResult<String> {
    str_of(t, attrs, key)?.ok_or_else(|| invalid(t, key, "is required"))
}

fn str_of(t: &str, attrs: &Attrs, key: &str) -> ProviderResult<Option<String>> {
    match attrs.get(key) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(invalid(t, key, "must be a string")),
    }
}

fn default_str(t: &str, attrs: &mut Attrs, key: &str, default: &str) -> ProviderResult<()> {
    if str_of(t, attrs, key)?.is_none() {
        attrs.insert(key.into(), default.into());
    }
    Ok(())
}

fn default_bool(t: &str, attrs: &mut Attrs, key: &str, default: bool) -> ProviderResult<()> {
    match attrs.get(key) {
        None => {
            attrs.insert(key.into(), default.into());
            Ok(())
        }
        Some(Value::Bool(_)) => Ok(()),
        Some(_) => Err(invalid(t, key, "must be true or false")),
    }
}

/// Docker's rule for container, network and volume names.
fn name(t: &str, attrs: &Attrs, min_len: usize) -> ProviderResult<()> {
    let n = required_str(t, attrs, "name")?;
    let ok = n.len() >= min_len
        && n.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
        && n.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if ok {
        Ok(())
    } else {
        Err(invalid(
            t,
            "name",
            format!("{n:?} must match [a-zA-Z0-9][a-zA-Z0-9_.-]* (at least {min_len} characters)"),
        ))
    }
}

/// An image reference in the form Docker lists it: `repo:tag` (`:latest` added when no
/// tag or digest is given), without the implicit `docker.io/library/` prefix.
pub fn image_ref(t: &str, key: &str, s: &str) -> ProviderResult<String> {
    let s = s.trim();
    if s.is_empty() || s.chars().any(|c| c.is_whitespace() || c.is_control()) || s.contains("://") {
        return Err(invalid(t, key, format!("{s:?} is not an image reference")));
    }
    let s = s
        .strip_prefix("docker.io/library/")
        .or_else(|| s.strip_prefix("docker.io/"))
        .unwrap_or(s);
    let s = s.strip_prefix("library/").unwrap_or(s);
    if s.contains('@') {
        return Ok(s.to_string());
    }
    let last = s.rsplit('/').next().unwrap_or(s);
    Ok(if last.contains(':') {
        s.to_string()
    } else {
        format!("{s}:latest")
    })
}

/// Splits `repo:tag` (the tag is after the last `/`, so a registry port is not a tag).
pub fn split_ref(r: &str) -> (&str, &str) {
    let slash = r.rfind('/').map_or(0, |i| i + 1);
    match r[slash..].rfind(':') {
        Some(i) => (&r[..slash + i], &r[slash + i + 1..]),
        None => (r, "latest"),
    }
}

fn list<'a>(t: &str, attrs: &'a Attrs, key: &str) -> ProviderResult<&'a Vec<Value>> {
    match attrs.get(key) {
        Some(Value::Array(a)) => Ok(a),
        _ => Err(invalid(t, key, "must be a list")),
    }
}

fn str_list(t: &str, attrs: &Attrs, key: &str) -> ProviderResult<Vec<String>> {
    list(t, attrs, key)?
        .iter()
        .map(|v| match v {
            Value::String(s) => Ok(s.clone()),
            _ => Err(invalid(t, key, "must be a list of strings")),
        })
        .collect()
}

/// A string map; numbers and booleans become strings (HCL users write `PORT = 80`).
fn str_map(t: &str, attrs: &Attrs, key: &str) -> ProviderResult<BTreeMap<String, String>> {
    let Some(Value::Object(m)) = attrs.get(key) else {
        return Err(invalid(t, key, "must be a map of strings"));
    };
    m.iter()
        .map(|(k, v)| {
            let v = match v {
                Value::String(s) => s.clone(),
                Value::Number(n) => n.to_string(),
                Value::Bool(b) => b.to_string(),
                _ => return Err(invalid(t, key, format!("{k:?} must be a string"))),
            };
            Ok((k.clone(), v))
        })
        .collect()
}

fn sorted_unique(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v.dedup();
    v
}

// ---- ports ----------------------------------------------------------------------------

/// `[ip:][host_port:]container_port[/proto]` → `ip:host_port:container_port/proto`, with
/// ip `0.0.0.0` and protocol `tcp` by default and an empty host port meaning "any".
pub fn port(s: &str) -> ProviderResult<String> {
    let bad = |why: &str| invalid(CONTAINER, "ports", format!("{s:?}: {why}"));
    let (rest, proto) = match s.rsplit_once('/') {
        Some((r, p)) => (r, p.to_ascii_lowercase()),
        None => (s, "tcp".to_string()),
    };
    if !matches!(proto.as_str(), "tcp" | "udp" | "sctp") {
        return Err(bad("protocol must be tcp, udp or sctp"));
    }
    let (ip, rest) = if let Some(r) = rest.strip_prefix('[') {
        let (ip, r) = r.split_once(']').ok_or_else(|| bad("unclosed ["))?;
        let r = r
            .strip_prefix(':')
            .ok_or_else(|| bad("expected : after ]"))?;
        (Some(ip.to_string()), r.to_string())
    } else {
        let parts: Vec<&str> = rest.split(':').collect();
        match parts.len() {
            1 | 2 => (None, rest.to_string()),
            3 => (
                Some(parts[0].to_string()),
                format!("{}:{}", parts[1], parts[2]),
            ),
            _ => return Err(bad("expected [ip:][host_port:]container_port[/protocol]")),
        }
    };
    let (host, container) = match rest.split_once(':') {
        Some((h, c)) => (h.to_string(), c.to_string()),
        None => (String::new(), rest),
    };
    // Host port 0, like an empty one, asks the engine for any free port.
    let host = if host == "0" { String::new() } else { host };
    let port_ok = |p: &str| p.parse::<u16>().is_ok_and(|n| n > 0);
    if !port_ok(&container) {
        return Err(bad(
            "container port must be a number from 1 to 65535 (no ranges)",
        ));
    }
    if !host.is_empty() && !port_ok(&host) {
        return Err(bad(
            "host port must be a number from 1 to 65535 (no ranges)",
        ));
    }
    let ip = match ip.filter(|i| !i.is_empty()) {
        None => "0.0.0.0".to_string(),
        Some(i) => {
            let addr: IpAddr = i.parse().map_err(|_| bad("invalid IP address"))?;
            addr.to_string()
        }
    };
    Ok(format_port(&ip, &host, &container, &proto))
}

/// The canonical spelling shared by normalize and observe.
pub fn format_port(ip: &str, host: &str, container: &str, proto: &str) -> String {
    let ip = if ip.is_empty() { "0.0.0.0" } else { ip };
    if ip.contains(':') {
        format!("[{ip}]:{host}:{container}/{proto}")
    } else {
        format!("{ip}:{host}:{container}/{proto}")
    }
}

/// A canonical port string split into (ip, host_port, "container_port/proto").
pub fn parse_canonical_port(s: &str) -> ProviderResult<(String, String, String)> {
    let c = port(s)?;
    let (addr, proto) = c.rsplit_once('/').expect("canonical form has a protocol");
    let (rest, container) = addr.rsplit_once(':').expect("canonical form has ports");
    let (ip, host) = rest.rsplit_once(':').expect("canonical form has an ip");
    let ip = ip.trim_start_matches('[').trim_end_matches(']');
    Ok((
        ip.to_string(),
        host.to_string(),
        format!("{container}/{proto}"),
    ))
}

// ---- mounts and networks --------------------------------------------------------------

/// Builds a mount object with its keys in one fixed order (normalize and observe agree).
pub fn mount_value(source: &str, target: &str, read_only: bool) -> Value {
    let mut m = Map::new();
    m.insert("source".into(), source.into());
    m.insert("target".into(), target.into());
    m.insert("read_only".into(), read_only.into());
    Value::Object(m)
}

fn mounts(items: &[Value]) -> ProviderResult<Vec<Value>> {
    let bad = |why: String| invalid(CONTAINER, "mounts", why);
    let mut out: Vec<(String, String, bool)> = Vec::new();
    for item in items {
        let Value::Object(o) = item else {
            return Err(bad(
                "entries must be objects {source, target, read_only}".into()
            ));
        };
        if let Some(k) = o
            .keys()
            .find(|k| !matches!(k.as_str(), "source" | "target" | "read_only"))
        {
            return Err(bad(format!("unknown key {k:?}")));
        }
        let s = |k: &str| match o.get(k) {
            Some(Value::String(s)) if !s.is_empty() => Ok(s.clone()),
            _ => Err(bad(format!("{k:?} is required and must be a string"))),
        };
        let (source, target) = (s("source")?, s("target")?);
        if !target.starts_with('/') {
            return Err(bad(format!("target {target:?} must be an absolute path")));
        }
        let volume_name_ok = source
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
        if !source.starts_with('/') && !volume_name_ok {
            return Err(bad(format!(
                "source {source:?} must be a volume name or an absolute host path"
            )));
        }
        let read_only = match o.get("read_only") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            Some(_) => return Err(bad("read_only must be true or false".into())),
        };
        let target = trim_slash(&target);
        if out.iter().any(|(_, t, _)| *t == target) {
            return Err(bad(format!("two mounts at {target:?}")));
        }
        out.push((trim_slash(&source), target, read_only));
    }
    out.sort_by(|a, b| a.1.cmp(&b.1));
    Ok(out.iter().map(|(s, t, r)| mount_value(s, t, *r)).collect())
}

/// `/data/` and `/data` are the same path to Docker.
pub fn trim_slash(p: &str) -> String {
    if p.len() > 1 {
        p.trim_end_matches('/').to_string()
    } else {
        p.to_string()
    }
}

/// Builds a network object with its keys in one fixed order; aliases sorted.
pub fn network_value(name: &str, mut aliases: Vec<String>) -> Value {
    aliases.sort();
    aliases.dedup();
    let mut m = Map::new();
    m.insert("name".into(), name.into());
    m.insert("aliases".into(), json!(aliases));
    Value::Object(m)
}

fn networks(items: &[Value]) -> ProviderResult<Vec<Value>> {
    let bad = |why: String| invalid(CONTAINER, "networks", why);
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for item in items {
        let (name, aliases) = match item {
            Value::String(s) => (s.clone(), Vec::new()),
            Value::Object(o) => {
                if let Some(k) = o.keys().find(|k| !matches!(k.as_str(), "name" | "aliases")) {
                    return Err(bad(format!("unknown key {k:?}")));
                }
                let Some(Value::String(n)) = o.get("name") else {
                    return Err(bad("\"name\" is required and must be a string".into()));
                };
                let aliases = match o.get("aliases") {
                    None | Some(Value::Null) => Vec::new(),
                    Some(Value::Array(a)) => a
                        .iter()
                        .map(|v| match v {
                            Value::String(s) if !s.is_empty() => Ok(s.clone()),
                            _ => Err(bad("aliases must be non-empty strings".into())),
                        })
                        .collect::<ProviderResult<_>>()?,
                    Some(_) => return Err(bad("aliases must be a list".into())),
                };
                (n.clone(), aliases)
            }
            _ => return Err(bad("entries must be objects {name, aliases}".into())),
        };
        if name.is_empty() {
            return Err(bad("network name must not be empty".into()));
        }
        if out.insert(name.clone(), aliases).is_some() {
            return Err(bad(format!("network {name:?} listed twice")));
        }
    }
    Ok(out.into_iter().map(|(n, a)| network_value(&n, a)).collect())
}

// ---- memory, restart, durations, healthcheck ------------------------------------------

/// `"256m"`, `"1g"`, `"512k"`, `"1024b"` (binary units, as Docker reads them) or an
/// integer number of bytes → bytes.
pub fn memory(v: &Value) -> Result<i64, String> {
    let s = match v {
        Value::Number(n) => {
            return n
                .as_i64()
                .filter(|b| *b >= 0)
                .ok_or_else(|| "must be a non-negative whole number of bytes".to_string())
        }
        Value::String(s) => s.trim().to_ascii_lowercase(),
        _ => return Err("must be bytes or a string like \"256m\"".into()),
    };
    let s = s.strip_suffix('b').unwrap_or(&s);
    let (num, mult): (&str, i64) = match s.chars().last() {
        Some('k') => (&s[..s.len() - 1], 1 << 10),
        Some('m') => (&s[..s.len() - 1], 1 << 20),
        Some('g') => (&s[..s.len() - 1], 1 << 30),
        Some('t') => (&s[..s.len() - 1], 1 << 40),
        _ => (s, 1),
    };
    let bad = || format!("{v} is not a size like \"256m\", \"1g\", \"512k\" or a byte count");
    let bytes = if let Ok(n) = num.parse::<i64>() {
        n.checked_mul(mult).ok_or_else(bad)?
    } else {
        let f: f64 = num.parse().map_err(|_| bad())?;
        if !f.is_finite() {
            return Err(bad());
        }
        (f * mult as f64).floor() as i64
    };
    if bytes < 0 {
        return Err(bad());
    }
    Ok(bytes)
}

/// `no`, `always`, `unless-stopped`, `on-failure` or `on-failure:N` (`:0` means no limit,
/// so it is written without).
pub fn restart(s: &str) -> ProviderResult<String> {
    let bad = || {
        invalid(
            CONTAINER,
            "restart",
            format!(
                "{s:?} is not one of \"no\", \"always\", \"unless-stopped\", \"on-failure\", \"on-failure:N\""
            ),
        )
    };
    match s {
        "" | "no" => Ok("no".into()),
        "always" | "unless-stopped" | "on-failure" => Ok(s.into()),
        _ => {
            let n = s
                .strip_prefix("on-failure:")
                .and_then(|n| n.parse::<u32>().ok())
                .ok_or_else(bad)?;
            Ok(restart_string("on-failure", n as i64))
        }
    }
}

/// The canonical restart string for a policy name and retry count read from Docker.
pub fn restart_string(name: &str, retries: i64) -> String {
    match name {
        "" | "no" => "no".into(),
        "on-failure" if retries > 0 => format!("on-failure:{retries}"),
        other => other.into(),
    }
}

/// Linux signals 1 to 31 by number, without `SIG`, as Docker's stop signal accepts them.
const SIGNALS: [&str; 31] = [
    "HUP", "INT", "QUIT", "ILL", "TRAP", "ABRT", "BUS", "FPE", "KILL", "USR1", "SEGV", "USR2",
    "PIPE", "ALRM", "TERM", "STKFLT", "CHLD", "CONT", "STOP", "TSTP", "TTIN", "TTOU", "URG",
    "XCPU", "XFSZ", "VTALRM", "PROF", "WINCH", "IO", "PWR", "SYS",
];

/// The signal Docker stops a container with when neither it nor its image names one.
pub const DEFAULT_STOP_SIGNAL: &str = "SIGTERM";

/// Seconds Docker waits after the stop signal before killing a container that sets no
/// stop timeout of its own.
pub const DEFAULT_STOP_TIMEOUT_S: i64 = 10;

/// A stop signal in canonical form, `SIG` and the upper-case name: `"term"`, `"SIGTERM"`
/// and `"15"` are all `"SIGTERM"` (Docker stores the spelling it was given).
pub fn stop_signal(s: &str) -> Result<String, String> {
    let upper = s.trim().to_ascii_uppercase();
    let bare = upper.strip_prefix("SIG").unwrap_or(&upper);
    let name = match bare.parse::<usize>() {
        Ok(n) => n.checked_sub(1).and_then(|i| SIGNALS.get(i)).copied(),
        // Linux's other names for three of them.
        Err(_) => match bare {
            "IOT" => Some("ABRT"),
            "CLD" => Some("CHLD"),
            "POLL" => Some("IO"),
            other => SIGNALS.iter().find(|n| **n == other).copied(),
        },
    };
    name.map(|n| format!("SIG{n}")).ok_or_else(|| {
        format!("{s:?} is not a signal: use a name like \"SIGINT\" or a number from 1 to 31")
    })
}

/// Whole seconds from a stop timeout (`"1s"`, `"1m30s"`, or a number of seconds):
/// Docker counts it in seconds, and a stop request takes a 32-bit number.
pub fn stop_timeout_s(v: &Value) -> Result<i64, String> {
    let ns = duration_ns(v)?;
    if ns % 1_000_000_000 != 0 {
        return Err(format!(
            "{v} is not a whole number of seconds (Docker counts the stop timeout in seconds)"
        ));
    }
    let secs = ns / 1_000_000_000;
    if secs > i64::from(i32::MAX) {
        return Err(format!("{v} is too long"));
    }
    Ok(secs)
}

/// The canonical stop timeout for a number of seconds read from Docker (`"10s"`,
/// `"1m30s"`). A negative value (the CLI's "wait forever") is written as is.
pub fn stop_timeout_string(secs: i64) -> String {
    if secs < 0 {
        return format!("{secs}s");
    }
    format_duration(secs * 1_000_000_000)
}

/// Parses `"1m30s"`, `"1.5s"`, `"500ms"`, `"2h"`, `"10us"`, `"100ns"` or a number of
/// seconds into nanoseconds.
pub fn duration_ns(v: &Value) -> Result<i64, String> {
    let bad = || format!("{v} is not a duration like \"10s\", \"1m30s\" or \"500ms\"");
    let s = match v {
        Value::Number(n) => {
            let secs = n.as_f64().ok_or_else(bad)?;
            if secs < 0.0 {
                return Err(bad());
            }
            return Ok((secs * 1e9).round() as i64);
        }
        Value::String(s) => s.trim().to_string(),
        _ => return Err(bad()),
    };
    if s == "0" {
        return Ok(0);
    }
    let mut total: f64 = 0.0;
    let mut rest = s.as_str();
    if rest.is_empty() {
        return Err(bad());
    }
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(bad)?;
        let num: f64 = rest[..num_len].parse().map_err(|_| bad())?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit = match &rest[..unit_len] {
            "h" => 3600e9,
            "m" => 60e9,
            "s" => 1e9,
            "ms" => 1e6,
            "us" | "µs" => 1e3,
            "ns" => 1.0,
            _ => return Err(bad()),
        };
        total += num * unit;
        rest = &rest[unit_len..];
    }
    Ok(total.round() as i64)
}

/// Nanoseconds → the canonical duration string: non-zero components from hours down to
/// nanoseconds (`90s` → `"1m30s"`, `1.5s` → `"1s500ms"`, `0` → `"0s"`).
pub fn format_duration(ns: i64) -> String {
    if ns <= 0 {
        return "0s".into();
    }
    let units: [(&str, i64); 6] = [
        ("h", 3_600_000_000_000),
        ("m", 60_000_000_000),
        ("s", 1_000_000_000),
        ("ms", 1_000_000),
        ("us", 1_000),
        ("ns", 1),
    ];
    let mut rest = ns;
    let mut out = String::new();
    for (u, size) in units {
        let n = rest / size;
        if n > 0 {
            out.push_str(&format!("{n}{u}"));
            rest -= n * size;
        }
    }
    out
}

/// Builds a healthcheck object in canonical form from Docker's fields (zeros mean
/// Docker's defaults, which are written out).
pub fn healthcheck_value(
    test: Vec<String>,
    interval: i64,
    timeout: i64,
    retries: i64,
    start_period: i64,
) -> Value {
    let or = |v: i64, d: i64| if v > 0 { v } else { d };
    let mut m = Map::new();
    m.insert("test".into(), json!(test));
    m.insert(
        "interval".into(),
        format_duration(or(interval, HEALTH_INTERVAL_NS)).into(),
    );
    m.insert(
        "timeout".into(),
        format_duration(or(timeout, HEALTH_TIMEOUT_NS)).into(),
    );
    m.insert("retries".into(), or(retries, HEALTH_RETRIES).into());
    m.insert("start_period".into(), format_duration(start_period).into());
    Value::Object(m)
}

/// The parts of a canonical healthcheck: (test, interval, timeout, retries, start).
pub type HealthParts = (Vec<String>, i64, i64, i64, i64);

/// Reads a (possibly non-canonical) healthcheck object into Docker's units.
pub fn health_parts(v: &Value) -> ProviderResult<HealthParts> {
    let bad = |why: String| invalid(CONTAINER, "healthcheck", why);
    let Value::Object(o) = v else {
        return Err(bad(
            "must be an object {test, interval, timeout, retries, start_period}".into(),
        ));
    };
    if let Some(k) = o.keys().find(|k| {
        !matches!(
            k.as_str(),
            "test" | "interval" | "timeout" | "retries" | "start_period"
        )
    }) {
        return Err(bad(format!("unknown key {k:?}")));
    }
    let mut test: Vec<String> = match o.get("test") {
        Some(Value::String(s)) if !s.is_empty() => vec!["CMD-SHELL".into(), s.clone()],
        Some(Value::Array(a)) if !a.is_empty() => a
            .iter()
            .map(|v| match v {
                Value::String(s) => Ok(s.clone()),
                _ => Err(bad("test must be a list of strings".into())),
            })
            .collect::<ProviderResult<_>>()?,
        _ => {
            return Err(bad(
                "test is required: a command list or a shell string".into()
            ))
        }
    };
    if !matches!(test[0].as_str(), "CMD" | "CMD-SHELL" | "NONE") {
        test.insert(0, "CMD".into());
    }
    let dur = |k: &str| match o.get(k) {
        None | Some(Value::Null) => Ok(0),
        Some(v) => duration_ns(v).map_err(|e| bad(format!("{k}: {e}"))),
    };
    let retries = match o.get("retries") {
        None | Some(Value::Null) => 0,
        Some(v) => v
            .as_i64()
            .filter(|r| *r >= 0)
            .ok_or_else(|| bad("retries must be a non-negative integer".into()))?,
    };
    Ok((
        test,
        dur("interval")?,
        dur("timeout")?,
        retries,
        dur("start_period")?,
    ))
}

fn healthcheck(v: &Value) -> ProviderResult<Value> {
    let (test, i, t, r, s) = health_parts(v)?;
    Ok(healthcheck_value(test, i, t, r, s))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_take_one_spelling() {
        assert_eq!(port("8080:80").unwrap(), "0.0.0.0:8080:80/tcp");
        assert_eq!(port("80").unwrap(), "0.0.0.0::80/tcp");
        assert_eq!(
            port("127.0.0.1:8080:80/UDP").unwrap(),
            "127.0.0.1:8080:80/udp"
        );
        assert_eq!(port("127.0.0.1::80").unwrap(), "127.0.0.1::80/tcp");
        assert_eq!(port("[::1]:8080:80").unwrap(), "[::1]:8080:80/tcp");
        assert_eq!(port("0.0.0.0:8080:80/tcp").unwrap(), "0.0.0.0:8080:80/tcp");
        assert_eq!(port("127.0.0.1:0:80").unwrap(), "127.0.0.1::80/tcp");
        for bad in [
            "",
            "x:80",
            "8000-8010:80",
            "1.2.3:80:80",
            "80/icmp",
            "80:0",
            "a:b:c:d",
        ] {
            assert!(port(bad).is_err(), "{bad}");
        }
        let (ip, host, cp) = parse_canonical_port("[::1]:8080:80/tcp").unwrap();
        assert_eq!(
            (ip.as_str(), host.as_str(), cp.as_str()),
            ("::1", "8080", "80/tcp")
        );
    }

    #[test]
    fn memory_units_become_bytes() {
        assert_eq!(memory(&json!("256m")).unwrap(), 256 << 20);
        assert_eq!(memory(&json!("1g")).unwrap(), 1 << 30);
        assert_eq!(memory(&json!("512k")).unwrap(), 512 << 10);
        assert_eq!(memory(&json!("512KB")).unwrap(), 512 << 10);
        assert_eq!(memory(&json!("1.5g")).unwrap(), 3 << 29);
        assert_eq!(memory(&json!(1048576)).unwrap(), 1048576);
        assert_eq!(memory(&json!("1048576")).unwrap(), 1048576);
        assert!(memory(&json!("lots")).is_err());
        assert!(memory(&json!(-1)).is_err());
    }

    #[test]
    fn durations_round_trip() {
        assert_eq!(duration_ns(&json!("10s")).unwrap(), 10_000_000_000);
        assert_eq!(duration_ns(&json!("1m30s")).unwrap(), 90_000_000_000);
        assert_eq!(duration_ns(&json!("1.5s")).unwrap(), 1_500_000_000);
        assert_eq!(duration_ns(&json!(5)).unwrap(), 5_000_000_000);
        assert_eq!(format_duration(90_000_000_000), "1m30s");
        assert_eq!(format_duration(1_500_000_000), "1s500ms");
        assert_eq!(format_duration(3_600_000_000_000), "1h");
        assert_eq!(format_duration(0), "0s");
        assert!(duration_ns(&json!("10 parsecs")).is_err());
        assert!(duration_ns(&json!("s")).is_err());
    }

    #[test]
    fn stop_signals_and_timeouts() {
        for s in ["SIGTERM", "term", "Sigterm", "15", "SIG15"] {
            assert_eq!(stop_signal(s).unwrap(), "SIGTERM", "{s}");
        }
        assert_eq!(stop_signal("INT").unwrap(), "SIGINT");
        assert_eq!(stop_signal("iot").unwrap(), "SIGABRT");
        assert_eq!(stop_signal("9").unwrap(), "SIGKILL");
        for bad in ["", "0", "32", "SIGNOPE", "TERM; rm -rf /"] {
            assert!(stop_signal(bad).is_err(), "{bad}");
        }
        assert_eq!(stop_timeout_s(&json!("1s")).unwrap(), 1);
        assert_eq!(stop_timeout_s(&json!("1m30s")).unwrap(), 90);
        assert_eq!(stop_timeout_s(&json!(5)).unwrap(), 5);
        assert_eq!(stop_timeout_s(&json!("0")).unwrap(), 0);
        assert!(stop_timeout_s(&json!("1.5s")).is_err());
        assert!(stop_timeout_s(&json!("500ms")).is_err());
        assert!(stop_timeout_s(&json!("-1s")).is_err());
        assert!(stop_timeout_s(&json!("1000000h")).is_err());
        assert_eq!(stop_timeout_string(90), "1m30s");
        assert_eq!(stop_timeout_string(0), "0s");
        assert_eq!(stop_timeout_string(-1), "-1s");

        let mut a: Attrs = serde_json::from_value(json!({
            "name": "w", "image": "busybox:1", "init": true,
            "stop_signal": "quit", "stop_timeout": "90s",
        }))
        .unwrap();
        normalize(CONTAINER, &mut a).unwrap();
        assert_eq!(a["init"], true);
        assert_eq!(a["stop_signal"], "SIGQUIT");
        assert_eq!(a["stop_timeout"], "1m30s");
        a.insert("init".into(), json!("yes"));
        assert!(normalize(CONTAINER, &mut a).is_err());
    }

    #[test]
    fn restart_policies() {
        assert_eq!(restart("on-failure:0").unwrap(), "on-failure");
        assert_eq!(restart("on-failure:3").unwrap(), "on-failure:3");
        assert_eq!(restart_string("", 0), "no");
        assert!(restart("sometimes").is_err());
    }

    #[test]
    fn image_refs_get_a_tag() {
        assert_eq!(
            image_ref(IMAGE, "name", "busybox").unwrap(),
            "busybox:latest"
        );
        assert_eq!(
            image_ref(IMAGE, "name", "docker.io/library/busybox:1").unwrap(),
            "busybox:1"
        );
        assert_eq!(
            image_ref(IMAGE, "name", "localhost:5000/a/b").unwrap(),
            "localhost:5000/a/b:latest"
        );
        assert_eq!(
            split_ref("localhost:5000/a/b:2"),
            ("localhost:5000/a/b", "2")
        );
        assert_eq!(split_ref("terrace/busybox:1"), ("terrace/busybox", "1"));
    }

    #[test]
    fn container_normalization_is_idempotent() {
        let mut a: Attrs = serde_json::from_value(json!({
            "name": "web",
            "image": "terrace/busybox:1",
            "env": {"PORT": 80, "A": "b"},
            "ports": ["8080:80", "127.0.0.1:9090:90/udp"],
            "mounts": [{"source": "data", "target": "/var/data/"}, {"source": "/etc", "target": "/cfg", "read_only": true}],
            "networks": [{"name": "b", "aliases": ["y", "x"]}, "a"],
            "memory": "64m",
            "restart": "on-failure:0",
            "healthcheck": {"test": ["wget", "-q", "localhost"], "interval": "90s"},
            "command": [],
        }))
        .unwrap();
        normalize(CONTAINER, &mut a).unwrap();
        let once = a.clone();
        normalize(CONTAINER, &mut a).unwrap();
        assert_eq!(a, once);
        assert_eq!(a["image_id"], "(id of terrace/busybox:1)");
        assert_eq!(a["env"]["PORT"], "80");
        assert_eq!(a["memory"], 64 << 20);
        assert_eq!(a["restart"], "on-failure");
        assert_eq!(a["running"], true);
        assert!(!a.contains_key("command"));
        assert_eq!(a["mounts"][0]["target"], "/cfg");
        assert_eq!(a["mounts"][1]["target"], "/var/data");
        assert_eq!(a["networks"][0], json!({"name": "a", "aliases": []}));
        assert_eq!(
            a["networks"][1],
            json!({"name": "b", "aliases": ["x", "y"]})
        );
        assert_eq!(
            a["healthcheck"],
            json!({"test": ["CMD", "wget", "-q", "localhost"], "interval": "1m30s",
                   "timeout": "30s", "retries": 3, "start_period": "0s"})
        );
    }

    #[test]
    fn errors_name_keys_not_values() {
        let mut a: Attrs = serde_json::from_value(json!({
            "name": "web", "image": "x", "env": {"K": ["hunter2"]}
        }))
        .unwrap();
        let e = normalize(CONTAINER, &mut a).unwrap_err().to_string();
        assert!(e.contains("\"K\"") && !e.contains("hunter2"), "{e}");
        let mut a: Attrs = serde_json::from_value(json!({
            "name": "web", "image": "x", "labels": {"terrace.address": "x"}
        }))
        .unwrap();
        assert!(normalize(CONTAINER, &mut a).is_err());
    }
}
