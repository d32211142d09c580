//! Schemas of the host resource types.
//!
//! The attribute names here are the contract with the config crate, which lowers HCL
//! into exactly these names.

use std::net::IpAddr;

use ipnet::IpNet;

use terrace_provider::{AttrSchema, Invalid, ResourceSchema, Subject, Value};

/// Type name of a file on a host.
pub const FILE: &str = "host_file";
/// Type name of an apt package.
pub const PACKAGE: &str = "host_package";
/// Type name of a service (systemd unit or init script).
pub const SERVICE: &str = "host_service";
/// Type name of an nftables rule in terrace's own table.
pub const FIREWALL_RULE: &str = "host_firewall_rule";
/// Type name of a guarded command.
pub const COMMAND: &str = "host_command";

// The checks of single values below are the provider's rules, written once: the
// configuration language runs them through the schema (to show problems at the value in
// the source), and the provider uses the same functions (`parse_source`, `MAX_COMMENT`,
// `valid_account`). Still written twice: `file.rs` (`check_path`), `command.rs`,
// `package.rs` (`check_name`, `check_version`) and `service.rs` (`check_name`);
// `ResourceSchema::check_attrs` can run every check of a type at once.

/// What a value is, for messages: strings as written (escaped), others as JSON.
fn shown(v: &Value) -> String {
    match v {
        Value::String(s) => s.escape_debug().to_string(),
        other => other.to_string(),
    }
}

/// One `allow_from` source as a network (an address is a full-length network). The
/// error is the reason, for a message. The only parser of sources: configuration
/// checks and the provider's rules both use it.
pub(crate) fn parse_source(s: &str) -> Result<IpNet, String> {
    let bad = || "not an IP address or CIDR network".to_string();
    let t = s.trim();
    let net = match t.split_once('/') {
        Some((addr, len)) => {
            let ip: IpAddr = addr.parse().map_err(|_| bad())?;
            let len: u8 = len.parse().map_err(|_| bad())?;
            let bits = if ip.is_ipv4() { 32 } else { 128 };
            if len > bits {
                return Err(format!("a /{len} prefix is longer than {bits} bits"));
            }
            IpNet::new(ip, len).map_err(|_| bad())?
        }
        None => IpNet::from(t.parse::<IpAddr>().map_err(|_| bad())?),
    };
    if net.trunc() != net {
        return Err(format!(
            "the network has host bits set; did you mean \"{}\"?",
            net.trunc()
        ));
    }
    Ok(net)
}

/// How a network is written: a full-length prefix is just the address.
pub(crate) fn render_source(n: &IpNet) -> String {
    if n.prefix_len() == n.max_prefix_len() {
        n.addr().to_string()
    } else {
        n.to_string()
    }
}

/// Canonical form of one `allow_from` source: an address, or a network with its host
/// bits clear (`10.0.0.0/8`); a full-length prefix is just the address.
pub(crate) fn normalize_source(s: &str) -> Result<String, String> {
    parse_source(s).map(|n| render_source(&n))
}

fn check_source(v: &Value, at: &Subject<'_>) -> Result<(), Invalid> {
    normalize_source(v.as_str().unwrap_or_default())
        .map(drop)
        .map_err(|why| Invalid {
            message: format!("invalid {} \"{}\": {why}", at.field, shown(v)),
            label: "not an IP address or CIDR network".into(),
            help: "allow_from takes IPv4 or IPv6 addresses and networks such as \"10.0.0.10\", \"10.0.0.0/24\" or \"fd00::/8\"; host names are not resolved".into(),
        })
}

/// nftables keeps at most 128 bytes of a rule's comment.
pub(crate) const MAX_COMMENT: usize = 128;

/// The nftables comment of a rule: `terrace:<address>`, then ` # <comment>`.
pub(crate) fn rule_comment(address: &str, comment: Option<&str>) -> String {
    match comment {
        Some(c) => format!("terrace:{address} # {c}"),
        None => format!("terrace:{address}"),
    }
}

fn check_comment(v: &Value, at: &Subject<'_>) -> Result<(), Invalid> {
    let c = v.as_str().unwrap_or_default();
    let full = rule_comment(at.address, Some(c));
    let why = if c.contains(['\n', '\0']) {
        "the comment must be one line".to_string()
    } else if full.len() > MAX_COMMENT {
        format!(
            "the rule's nftables comment \"{}\" would be {} bytes, more than the {MAX_COMMENT} nftables keeps",
            full.escape_debug(),
            full.len()
        )
    } else {
        return Ok(());
    };
    Err(Invalid {
        message: format!("invalid {}: {why}", at.field),
        label: "this comment".into(),
        help: "shorten the comment to one short line".into(),
    })
}

/// True if `s` is a safe account or group name (so it can be quoted without surprise
/// and reads back as written).
pub(crate) fn valid_account(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && !s.starts_with('-')
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

fn check_account(v: &Value, at: &Subject<'_>) -> Result<(), Invalid> {
    if v.as_str().is_some_and(valid_account) {
        return Ok(());
    }
    let key = at.field;
    Err(Invalid {
        message: format!("invalid {key} \"{}\"", shown(v)),
        label: format!("not a valid {key} name"),
        help: format!(
            "a {key} is an account name of letters, digits, `_`, `-` and `.`, e.g. \"www-data\""
        ),
    })
}

/// Why `p` is not an absolute path on a host, if it is not.
fn remote_path(p: &str) -> Option<&'static str> {
    if !p.starts_with('/') {
        Some("not an absolute path")
    } else if p.contains(['\n', '\0']) {
        Some("the path contains a newline or NUL")
    } else {
        None
    }
}

fn check_file_path(v: &Value, at: &Subject<'_>) -> Result<(), Invalid> {
    let p = v.as_str().unwrap_or_default();
    let why = match remote_path(p) {
        Some(why) => why,
        None if p.ends_with('/') => "a file path does not end with `/`",
        None => return Ok(()),
    };
    Err(Invalid {
        message: format!("invalid {} \"{}\": {why}", at.field, shown(v)),
        label: why.into(),
        help: "a file's path on the host is absolute, e.g. \"/etc/nginx/sites-available/app\""
            .into(),
    })
}

fn check_creates(v: &Value, at: &Subject<'_>) -> Result<(), Invalid> {
    let Some(why) = remote_path(v.as_str().unwrap_or_default()) else {
        return Ok(());
    };
    Err(Invalid {
        message: format!("invalid {} \"{}\": {why}", at.field, shown(v)),
        label: why.into(),
        help: "`creates` is the absolute path of a file the command makes; the command is skipped while it exists".into(),
    })
}

fn check_command(v: &Value, _: &Subject<'_>) -> Result<(), Invalid> {
    if !v.as_str().unwrap_or_default().trim().is_empty() {
        return Ok(());
    }
    Err(Invalid {
        message: "the command is empty".into(),
        label: "empty".into(),
        help: "write the shell command to run, e.g. command = \"mkswap /swapfile\"".into(),
    })
}

/// True if `v` is a Debian package version.
pub(crate) fn valid_version(v: &str) -> bool {
    !v.is_empty()
        && v.starts_with(|c: char| c.is_ascii_digit())
        && v.chars()
            .all(|c| c.is_ascii_alphanumeric() || ".+~:-".contains(c))
}

fn check_version(v: &Value, _: &Subject<'_>) -> Result<(), Invalid> {
    if v.as_str().is_some_and(valid_version) {
        return Ok(());
    }
    Err(Invalid {
        message: format!("invalid package version \"{}\"", shown(v)),
        label: "not a Debian version".into(),
        help: "a Debian version starts with a digit and has only letters, digits and `.+~:-`, e.g. \"5:7.0.15-1~deb12u1\" (see `apt-cache policy <package>`)".into(),
    })
}

/// True if `n` is a Debian package name, optionally with `:arch`.
pub(crate) fn valid_package_name(n: &str) -> bool {
    let (pkg, arch) = n.split_once(':').unwrap_or((n, "a"));
    pkg.len() >= 2
        && pkg.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && pkg
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "+-.".contains(c))
        && !arch.is_empty()
        && arch.chars().all(|c| c.is_ascii_alphanumeric())
}

fn check_package_name(v: &Value, _: &Subject<'_>) -> Result<(), Invalid> {
    if v.as_str().is_some_and(valid_package_name) {
        return Ok(());
    }
    Err(Invalid {
        message: format!("invalid package name \"{}\"", shown(v)),
        label: "not a valid package name".into(),
        help: "Debian package names have at least two characters: lower-case letters, digits, `+`, `-` and `.`, starting with a letter or digit (e.g. \"redis-server\"), optionally followed by `:arch`".into(),
    })
}

/// True if `n` is a systemd unit or init script name.
pub(crate) fn valid_service_name(n: &str) -> bool {
    !n.is_empty()
        && !n.starts_with(['-', '.'])
        && n.chars()
            .all(|c| c.is_ascii_alphanumeric() || "@._:-".contains(c))
}

fn check_service_name(v: &Value, _: &Subject<'_>) -> Result<(), Invalid> {
    if v.as_str().is_some_and(valid_service_name) {
        return Ok(());
    }
    Err(Invalid {
        message: format!("invalid service name \"{}\"", shown(v)),
        label: "not a valid service name".into(),
        help: "service names have letters, digits and `@._:-`, and do not start with `-` or `.` (e.g. \"nginx\" or \"php8.2-fpm\")".into(),
    })
}

const FILE_ATTRS: &[AttrSchema] = &[
    AttrSchema::plain("path")
        .force_new()
        .string("\"/etc/nginx/nginx.conf\"")
        .required()
        .validate(check_file_path)
        .doc("Absolute path of the file on the host."),
    // Kept in state so that plans can show a line diff. Changes on the host are
    // detected through `content_sha256`; observe reads the content back only when the
    // hash differs (world-readable text files under a size cap), so that drift shows
    // as a line diff; otherwise the recorded value stands.
    AttrSchema::plain("content")
        .string("\"bind 0.0.0.0\\n\"")
        .doc("The file's content (a block sets it inline, or renders it from `source`)."),
    // Filled in by `normalize` from `content`; observe reports the live file's hash.
    AttrSchema::plain("content_sha256")
        .computed()
        .output()
        .doc("SHA-256 of the content, as lower-case hex."),
    // A string or a number: `"0644"`, `644`.
    AttrSchema::plain("mode").doc("Octal file mode, e.g. \"0644\"."),
    AttrSchema::plain("owner")
        .string("\"root\"")
        .validate(check_account)
        .doc("Owning user."),
    AttrSchema::plain("group")
        .string("\"root\"")
        .validate(check_account)
        .doc("Owning group."),
];

const PACKAGE_ATTRS: &[AttrSchema] = &[
    AttrSchema::plain("name")
        .force_new()
        .string("\"nginx\"")
        .required()
        .validate(check_package_name)
        .doc("Debian package name, optionally with `:arch`."),
    AttrSchema::plain("state")
        .string("\"present\"")
        .one_of(&["present", "absent"], "a package state")
        .doc("Whether the package is installed (default \"present\")."),
    AttrSchema::plain("version")
        .string("\"5:7.0.15-1~deb12u1\"")
        .validate(check_version)
        .doc("Exact Debian version to install."),
];

const SERVICE_ATTRS: &[AttrSchema] = &[
    AttrSchema::plain("name")
        .force_new()
        .string("\"nginx\"")
        .required()
        .validate(check_service_name)
        .doc("systemd unit or init script name."),
    AttrSchema::plain("running")
        .bool()
        .doc("Whether the service runs (default true)."),
    AttrSchema::plain("enabled")
        .bool()
        .doc("Whether the service starts at boot."),
    // An opaque token (a hash of the files the service reads): when it changes, the
    // update restarts the service. Nothing on the host records it.
    AttrSchema::plain("restart_on")
        .unobservable()
        .on_update("the service is restarted")
        .doc("Restart token (a block lists the files whose content it hashes)."),
];

const FIREWALL_ATTRS: &[AttrSchema] = &[
    AttrSchema::plain("port")
        .int(1, 65535, "6379")
        .required()
        .doc("The port reachable only from `allow_from`."),
    AttrSchema::plain("proto")
        .string("\"tcp\"")
        .one_of(&["tcp", "udp"], "a protocol")
        .doc("Protocol (default \"tcp\")."),
    AttrSchema::plain("allow_from")
        .string_list("[\"10.0.0.0/24\", host.web1.address]")
        .required()
        .validate(check_source)
        .doc("IP addresses and CIDR networks allowed to connect."),
    AttrSchema::plain("comment")
        .string("\"app servers only\"")
        .validate(check_comment)
        .doc("A note kept in the rule's nftables comment."),
    // Rules in terrace's chain that terrace did not write and that can match this
    // rule's traffic, as nft prints them. Always `[]` in the configuration: anything
    // else is drift, and apply removes them.
    AttrSchema::plain("foreign_rules")
        .string_list("[]")
        .output()
        .doc("Rules in terrace's chain that terrace did not write (drift)."),
    // What of the rule's own nft rules is missing or no longer drops (one per address
    // family). Always `[]` in the configuration; apply writes both rules again.
    AttrSchema::plain("enforcement_gaps")
        .string_list("[]")
        .output()
        .doc("How the rule's port is left unfiltered (a family's nft rule removed or changed by hand; drift)."),
];

const COMMAND_ATTRS: &[AttrSchema] = &[
    AttrSchema::plain("command")
        .unobservable()
        .string("\"mkswap /swapfile\"")
        .required()
        .validate(check_command)
        .doc("Shell command to run."),
    AttrSchema::plain("creates")
        .unobservable()
        .string("\"/swapfile\"")
        .validate(check_creates)
        .doc("A file the command makes: the command is skipped while it exists."),
    AttrSchema::plain("unless")
        .unobservable()
        .string("\"swapon --show | grep -q swapfile\"")
        .doc("A shell test: the command is skipped while it exits 0."),
];

/// The resource types this provider implements.
pub static SCHEMAS: &[ResourceSchema] = &[
    ResourceSchema {
        type_name: FILE,
        description: "host file",
        import_id: &["path"],
        adopt_existing: false,
        carries_data: false,
        lives_in: &[],
        drops_data_if: None,
        delete_keeps_object: false,
        attrs: FILE_ATTRS,
    },
    ResourceSchema {
        type_name: PACKAGE,
        description: "package",
        import_id: &["name"],
        adopt_existing: true,
        carries_data: false,
        lives_in: &[],
        drops_data_if: None,
        // Removing it from the configuration only stops managing it (see its module).
        delete_keeps_object: true,
        attrs: PACKAGE_ATTRS,
    },
    ResourceSchema {
        type_name: SERVICE,
        description: "service",
        import_id: &["name"],
        adopt_existing: true,
        carries_data: false,
        lives_in: &[],
        drops_data_if: None,
        // Removing it from the configuration only stops managing it (see its module).
        delete_keeps_object: true,
        attrs: SERVICE_ATTRS,
    },
    ResourceSchema {
        type_name: FIREWALL_RULE,
        description: "firewall rule",
        import_id: &["port", "proto"],
        adopt_existing: false,
        carries_data: false,
        lives_in: &[],
        drops_data_if: None,
        delete_keeps_object: false,
        attrs: FIREWALL_ATTRS,
    },
    ResourceSchema {
        type_name: COMMAND,
        description: "command",
        import_id: &["command"],
        adopt_existing: true,
        carries_data: false,
        lives_in: &[],
        drops_data_if: None,
        // Removing it from the configuration only stops managing it (see its module).
        delete_keeps_object: true,
        attrs: COMMAND_ATTRS,
    },
];

#[cfg(test)]
mod tests {
    use super::*;

    fn check(type_name: &str, attr: &str, v: Value) -> Result<(), Invalid> {
        let schema = SCHEMAS.iter().find(|s| s.type_name == type_name).unwrap();
        let field = attr.to_string();
        schema.attr(attr).unwrap().check(
            &v,
            &Subject {
                address: "firewall_rule.r",
                field: &field,
            },
        )
    }

    #[test]
    fn sources_are_canonical_or_explained() {
        assert_eq!(normalize_source(" 10.0.0.1/32").unwrap(), "10.0.0.1");
        assert_eq!(normalize_source("2001:DB8::/32").unwrap(), "2001:db8::/32");
        assert!(normalize_source("10.0.0.1/8")
            .unwrap_err()
            .contains("did you mean \"10.0.0.0/8\""));
        assert_eq!(
            normalize_source("10.0.0.0/33").unwrap_err(),
            "a /33 prefix is longer than 32 bits"
        );
        let e = check(FIREWALL_RULE, "allow_from", "example.com".into()).unwrap_err();
        assert_eq!(
            e.message,
            "invalid allow_from \"example.com\": not an IP address or CIDR network"
        );
    }

    #[test]
    fn check_attrs_applies_the_same_rules_to_a_resource() {
        let schema = SCHEMAS
            .iter()
            .find(|s| s.type_name == FIREWALL_RULE)
            .unwrap();
        let attrs: terrace_provider::Attrs = serde_json::from_value(serde_json::json!({
            "port": 22, "allow_from": ["10.0.0.0/8", "10.0.0.1/8"], "comment": "ok"
        }))
        .unwrap();
        let e = schema.check_attrs("firewall_rule.r", &attrs).unwrap_err();
        assert_eq!(
            e.into_error(FIREWALL_RULE).to_string(),
            "host_firewall_rule: invalid allow_from[1] \"10.0.0.1/8\": the network has host bits set; did you mean \"10.0.0.0/8\"?"
        );
    }

    #[test]
    fn the_comment_must_fit_with_the_address() {
        assert!(check(FIREWALL_RULE, "comment", "short".into()).is_ok());
        let long = "x".repeat(MAX_COMMENT);
        let e = check(FIREWALL_RULE, "comment", long.into()).unwrap_err();
        assert!(
            e.message.contains("more than the 128 nftables keeps"),
            "{e}"
        );
        assert!(check(FIREWALL_RULE, "comment", "a\nb".into()).is_err());
    }

    #[test]
    fn accounts_paths_commands_and_versions() {
        assert!(check(FILE, "owner", "www-data".into()).is_ok());
        assert_eq!(
            check(FILE, "group", "-x".into()).unwrap_err().label,
            "not a valid group name"
        );
        assert!(check(FILE, "path", "/etc/".into()).is_err());
        assert!(check(COMMAND, "creates", "rel".into()).is_err());
        assert!(check(COMMAND, "command", " ".into()).is_err());
        assert!(check(PACKAGE, "version", "1.0-1".into()).is_ok());
        assert!(check(PACKAGE, "version", "v1".into()).is_err());
        assert!(check(PACKAGE, "name", "redis-server:amd64".into()).is_ok());
        assert!(check(PACKAGE, "name", "P".into()).is_err());
        assert!(check(SERVICE, "name", "php8.2-fpm".into()).is_ok());
        assert!(check(SERVICE, "name", "-x".into()).is_err());
    }
}
