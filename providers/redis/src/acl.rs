//! The ACL rules terrace gives a tenant, and the parsing of `ACL LIST`.

use sha2::{Digest, Sha256};

/// The command rules of a tenant, in the form Redis 7 reports them back (`ACL LIST`
/// drops rules that `-@dangerous` already covers, such as `-keys`, `-flushall`,
/// `-flushdb` and `-swapdb`, and orders them its own way; terrace compares them as a
/// sorted set). Why each one:
///
/// - `+@all -@dangerous`: everything except administration and whole-keyspace commands
///   (`KEYS`, `FLUSHALL`, `FLUSHDB`, `SWAPDB`, `CONFIG`, `INFO`, `MONITOR`, `DEBUG`,
///   `CLIENT LIST/KILL`, `SHUTDOWN`, replication, `SORT` with its `BY/GET` patterns).
/// - `-scan`, `-randomkey`: they return key names without checking them against the
///   user's key patterns, so another tenant's key names would be listed.
/// - `-dbsize`: counts every tenant's keys.
/// - `-pubsub`: `PUBSUB CHANNELS` lists every tenant's active channels.
/// - `-acl`, `-config`: the parts `@dangerous` leaves (`ACL WHOAMI`, `CONFIG HELP`)
///   are not needed, and no ACL or configuration command belongs to a tenant.
/// - `-select`, `-move`: key patterns hold in every database, but one prefix per tenant
///   is the isolation unit; other databases are not theirs to use.
/// - `-function`: functions are one library shared by every user (`FUNCTION DELETE`,
///   `FUNCTION FLUSH` would remove other tenants' code). `EVAL` stays: scripts' commands
///   are checked against the user's ACL in Redis 7.
pub const TENANT_COMMANDS: &[&str] = &[
    "+@all",
    "-@dangerous",
    "-acl",
    "-config",
    "-dbsize",
    "-function",
    "-move",
    "-pubsub",
    "-randomkey",
    "-scan",
    "-select",
];

/// The hex SHA-256 of a password: what `ACL SETUSER u #<hex>` stores, so the password
/// itself never travels in an ACL command.
pub fn password_hash(password: &str) -> String {
    hex::encode(Sha256::digest(password.as_bytes()))
}

/// The key pattern of a prefix.
pub fn key_pattern(prefix: &str) -> String {
    format!("~{prefix}*")
}

/// The channel pattern of a prefix.
pub fn channel_pattern(prefix: &str) -> String {
    format!("&{prefix}*")
}

/// The `SCAN MATCH` glob of every key starting with `prefix`, glob characters escaped
/// (prefixes are validated to have none; this keeps a purge exact regardless).
pub fn key_glob(prefix: &str) -> String {
    let mut out = String::with_capacity(prefix.len() + 1);
    for c in prefix.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('*');
    out
}

/// The arguments of `ACL SETUSER` that make `name` exactly a tenant confined to
/// `prefix`: `reset` first, so nothing granted by hand survives.
pub fn setuser_args(name: &str, prefix: &str, hash: &str) -> Vec<String> {
    let mut args = vec![
        "SETUSER".to_string(),
        name.to_string(),
        "reset".into(),
        "on".into(),
        format!("#{hash}"),
        key_pattern(prefix),
        "resetchannels".into(),
        channel_pattern(prefix),
    ];
    args.extend(TENANT_COMMANDS.iter().map(|c| c.to_string()));
    args
}

/// One user as `ACL LIST` describes it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LiveUser {
    /// The user name.
    pub name: String,
    /// `on` (true) or `off`.
    pub enabled: bool,
    /// `nopass`: any password logs in.
    pub nopass: bool,
    /// The SHA-256 hashes of its passwords (hex, lower-case).
    pub hashes: Vec<String>,
    /// Key patterns (`~p*`, `%R~p*`; `allkeys` as `~*`), sorted.
    pub keys: Vec<String>,
    /// Channel patterns (`&p*`; `allchannels` as `&*`), sorted.
    pub channels: Vec<String>,
    /// Command rules (`+@all`, `-scan`, ...) and selectors (`(...)`), sorted.
    pub commands: Vec<String>,
}

impl LiveUser {
    /// The prefix the user is confined to, when its keys are one `~prefix*` pattern (a
    /// tenant's shape); `None` for any other.
    pub fn prefix(&self) -> Option<&str> {
        match self.keys.as_slice() {
            [k] => k.strip_prefix('~').and_then(|k| k.strip_suffix('*')),
            _ => None,
        }
    }
}

/// Parses one line of `ACL LIST` (`user <name> <rules...>`); `None` if it is not one.
pub fn parse_line(line: &str) -> Option<LiveUser> {
    let rest = line.strip_prefix("user ")?;
    // Selectors (Redis 7) are parenthesised groups with spaces inside: everything from
    // the first one on is kept whole, as a command rule that widens the user.
    let (plain, selectors) = match rest.find('(') {
        Some(i) => (&rest[..i], Some(rest[i..].trim())),
        None => (rest, None),
    };
    let mut tokens = plain.split_whitespace();
    let mut user = LiveUser {
        name: tokens.next()?.to_string(),
        ..LiveUser::default()
    };
    for t in tokens {
        match t {
            "on" => user.enabled = true,
            "off" => user.enabled = false,
            "nopass" => user.nopass = true,
            "allkeys" => user.keys.push("~*".into()),
            "allchannels" => user.channels.push("&*".into()),
            "allcommands" => user.commands.push("+@all".into()),
            "nocommands" => user.commands.push("-@all".into()),
            "resetchannels"
            | "resetkeys"
            | "resetpass"
            | "sanitize-payload"
            | "skip-sanitize-payload" => {}
            t if t.starts_with('#') => user.hashes.push(t[1..].to_ascii_lowercase()),
            t if t.starts_with('~') || t.starts_with('%') => user.keys.push(t.into()),
            t if t.starts_with('&') => user.channels.push(t.into()),
            t => user.commands.push(t.into()),
        }
    }
    if let Some(s) = selectors {
        user.commands.push(s.to_string());
    }
    user.keys.sort();
    user.channels.sort();
    user.commands.sort();
    Some(user)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_tenant_line_and_a_widened_one() {
        let u = parse_line("user wp_a on sanitize-payload #ABC ~wp_a:* resetchannels &wp_a:* +@all -@dangerous -scan").unwrap();
        assert_eq!(u.name, "wp_a");
        assert!(u.enabled && !u.nopass);
        assert_eq!(u.hashes, ["abc"]);
        assert_eq!(u.keys, ["~wp_a:*"]);
        assert_eq!(u.channels, ["&wp_a:*"]);
        assert_eq!(u.commands, ["+@all", "-@dangerous", "-scan"]);
        let w = parse_line("user x off nopass allkeys allchannels +@all (~other* +get)").unwrap();
        assert!(!w.enabled && w.nopass);
        assert_eq!(w.keys, ["~*"]);
        assert_eq!(w.channels, ["&*"]);
        assert_eq!(w.commands, ["(~other* +get)", "+@all"]);
        assert_eq!(parse_line("garbage"), None);
    }

    #[test]
    fn setuser_sends_the_hash_never_the_password_and_tenant_rules_are_sorted() {
        let args = setuser_args("wp_a", "wp_a:", &password_hash("s3cret"));
        assert!(!args.iter().any(|a| a.contains("s3cret")));
        assert_eq!(
            args[4],
            "#1ec1c26b50d5d3c58d9583181af8076655fe00756bf7285940ba3670f99fcba0"
        );
        assert_eq!(key_glob("wp_a:"), "wp_a:*");
        assert_eq!(key_glob("a*b"), "a\\*b*");
        let mut sorted = TENANT_COMMANDS.to_vec();
        sorted.sort();
        assert_eq!(sorted, TENANT_COMMANDS);
    }
}
