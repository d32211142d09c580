//! Evaluating `file`, `package`, `daemon`, `firewall_rule` and `command` blocks straight
//! into `host_*` resources of the provider `host.<label>`.
//!
//! Only attributes the user set go into a resource, so that the planner compares
//! nothing else. Values are checked here the way the SSH provider checks them, so that
//! mistakes are reported with their place in the configuration.

use std::collections::BTreeSet;
use std::net::IpAddr;

use serde_json::Value as Json;
use sha2::{Digest, Sha256};
use terrace_provider::{Attrs, DesiredResource, ProviderKey};

use super::*;
use crate::model::{BlockDep, HOST_PREFIX};

/// The host block kinds (one `host_*` resource per instance).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HostedKind {
    File,
    Package,
    Daemon,
    FirewallRule,
    Command,
}

impl HostedKind {
    /// The block kind.
    fn kind(self) -> Kind {
        match self {
            HostedKind::File => Kind::File,
            HostedKind::Package => Kind::Package,
            HostedKind::Daemon => Kind::Daemon,
            HostedKind::FirewallRule => Kind::FirewallRule,
            HostedKind::Command => Kind::Command,
        }
    }

    /// Block type keyword and namespace.
    fn ns(self) -> &'static str {
        self.kind().keyword()
    }

    fn type_name(self) -> &'static str {
        match self {
            HostedKind::File => "host_file",
            HostedKind::Package => "host_package",
            HostedKind::Daemon => "host_service",
            HostedKind::FirewallRule => "host_firewall_rule",
            HostedKind::Command => "host_command",
        }
    }

    fn node(self, label: &str) -> Node {
        Node::Block(self.kind(), label.to_string())
    }
}

/// One evaluated file instance, for `restart_on`.
#[derive(Debug, Clone)]
pub(crate) struct FileValue {
    /// Its value under `file.<label>` (`{ path, host }`).
    value: Value,
    address: Address,
    host: String,
    content: String,
    sensitive: bool,
}

/// A host block being evaluated, the same for all its instances.
#[derive(Clone, Copy)]
struct HostedBlock<'b> {
    block: &'b RawBlock,
    kind: HostedKind,
    label: &'b str,
    /// References of the block, without `depends_on` and `restart_on`.
    targets: &'b [Target],
}

/// One instance of a host block.
struct Instance<'b> {
    block: &'b RawBlock,
    label: &'b str,
    address: String,
    ctx: Context<'static>,
    each_sensitive: bool,
    host: String,
}

/// What a block body produces.
struct Body {
    attrs: Attrs,
    sensitive: BTreeSet<String>,
    identity: Option<(String, Loc)>,
    /// Fields of its value besides `host`.
    fields: Vec<(&'static str, Value)>,
    deps: Vec<Address>,
}

/// The kinds whose blocks own resources (what `depends_on` may list).
fn resource_kinds() -> Vec<&'static str> {
    Kind::ALL
        .iter()
        .filter(|k| k.owns_resources())
        .map(|k| k.keyword())
        .collect()
}

const DEPENDS_ON_EXAMPLE: &str = "[package.nginx, file.site]";

/// Checks an absolute path on a host; the error is a reason for the message.
fn remote_path(p: &str) -> Result<(), &'static str> {
    if !p.starts_with('/') {
        Err("not an absolute path")
    } else if p.contains(['\n', '\0']) {
        Err("the path contains a newline or NUL")
    } else {
        Ok(())
    }
}

/// An octal file mode (`"0644"`, `"755"`, `644`) in four digits.
fn file_mode(v: &Value) -> Option<String> {
    let raw = match v {
        Value::String(s) => s.trim().trim_start_matches("0o").to_string(),
        Value::Number(n) => match n.as_f64() {
            Some(f) if f.fract() == 0.0 && f >= 0.0 => format!("{}", f as u64),
            _ => return None,
        },
        _ => return None,
    };
    let ok = (3..=4).contains(&raw.len()) && raw.chars().all(|c| ('0'..='7').contains(&c));
    ok.then(|| format!("{raw:0>4}"))
}

/// User and group names the provider accepts.
fn account(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && !s.starts_with('-')
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

/// A Debian package name, optionally with `:arch`.
fn package_name(n: &str) -> bool {
    let (pkg, arch) = n.split_once(':').unwrap_or((n, "a"));
    pkg.len() >= 2
        && pkg.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && pkg
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "+-.".contains(c))
        && !arch.is_empty()
        && arch.chars().all(|c| c.is_ascii_alphanumeric())
}

fn package_version(v: &str) -> bool {
    v.starts_with(|c: char| c.is_ascii_digit())
        && v.chars()
            .all(|c| c.is_ascii_alphanumeric() || ".+~:-".contains(c))
}

/// A systemd unit or init script name.
fn service_name(n: &str) -> bool {
    !n.is_empty()
        && !n.starts_with(['-', '.'])
        && n.chars()
            .all(|c| c.is_ascii_alphanumeric() || "@._:-".contains(c))
}

/// An address or a CIDR network with its host bits clear; the error is a reason.
fn source_address(s: &str) -> Result<(), String> {
    let bad = || "not an IP address or CIDR network".to_string();
    let (addr, len) = match s.split_once('/') {
        Some((a, l)) => (a, Some(l.parse::<u8>().map_err(|_| bad())?)),
        None => (s, None),
    };
    let ip: IpAddr = addr.parse().map_err(|_| bad())?;
    let bits = if ip.is_ipv4() { 32 } else { 128 };
    let Some(len) = len.filter(|l| *l < bits) else {
        return match len {
            Some(l) if l > bits => Err(format!("a /{l} prefix is longer than {bits} bits")),
            _ => Ok(()),
        };
    };
    let masked = match ip {
        IpAddr::V4(v4) => {
            let m = if len == 0 { 0 } else { u32::MAX << (32 - len) };
            IpAddr::from((u32::from(v4) & m).to_be_bytes())
        }
        IpAddr::V6(v6) => {
            let m = if len == 0 {
                0
            } else {
                u128::MAX << (128 - len)
            };
            IpAddr::from((u128::from(v6) & m).to_be_bytes())
        }
    };
    if masked != ip {
        return Err(format!(
            "the network has host bits set; did you mean \"{masked}/{len}\"?"
        ));
    }
    Ok(())
}

/// The lower-case hex SHA-256 of the files' contents, each followed by a NUL byte.
fn restart_token(contents: &[&str]) -> String {
    let mut h = Sha256::new();
    for c in contents {
        h.update(c.as_bytes());
        h.update([0u8]);
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// nftables keeps at most 128 bytes of a rule's comment, which the provider builds as
/// `terrace:<address> # <comment>`.
const MAX_NFT_COMMENT: usize = 128;

/// One allowed value with did-you-mean on a miss.
fn one_of(
    r: &mut Reader,
    key: &str,
    (v, loc): &(String, Loc),
    allowed: &[&str],
    label: &str,
) -> bool {
    if allowed.contains(&v.as_str()) {
        return true;
    }
    r.errors.push(
        ConfigError::new(
            ErrorKind::InvalidValue,
            format!("invalid value for \"{key}\": \"{}\"", v.escape_debug()),
        )
        .at(loc, label)
        .help(suggest(v, allowed.iter().copied(), |all| {
            format!("{key} must be {}", list_names(&all))
        })),
    );
    false
}

impl State<'_> {
    /// Evaluates every instance of a host block and declares its value.
    pub(super) fn hosted(&mut self, label: &str, kind: HostedKind) -> bool {
        let decls = self.decls;
        let node = kind.node(label);
        let block = decls.block(&node).expect("host blocks have a block");
        let Some((instances, each_sensitive)) = self.instances(block) else {
            return false;
        };
        // `depends_on` and `restart_on` name their dependencies precisely; other
        // references make the block wait for every resource of the referenced block.
        let targets = block_targets(
            block
                .attrs
                .iter()
                .filter(|a| a.key != "depends_on" && a.key != "restart_on"),
        );
        let hb = HostedBlock {
            block,
            kind,
            label,
            targets: &targets,
        };
        let mut ok = true;
        let value = match instances {
            None => {
                let v = self.hosted_instance(&hb, None, self.ctx(), false);
                ok = v.is_some();
                v.unwrap_or(Value::Null)
            }
            Some(list) => {
                let mut values = Map::new();
                for (key, each) in list {
                    let mut ctx = self.ctx();
                    ctx.declare_var("each", each);
                    match self.hosted_instance(&hb, Some(&key), ctx, each_sensitive) {
                        Some(v) => {
                            values.insert(key, v);
                        }
                        None => ok = false,
                    }
                }
                Value::Object(values)
            }
        };
        self.ns.declare(kind.kind(), label, value);
        ok
    }

    /// Evaluates instance `key` (`None` without for_each) of a host block.
    fn hosted_instance(
        &mut self,
        b: &HostedBlock<'_>,
        key: Option<&str>,
        ctx: Context<'static>,
        each_sensitive: bool,
    ) -> Option<Value> {
        let HostedBlock {
            block,
            kind,
            label,
            targets,
        } = *b;
        let ns = kind.ns();
        let address = match key {
            Some(k) => format!("{ns}.{label}[{}]", quote(k)),
            None => format!("{ns}.{label}"),
        };
        let mut r = Reader::new(ctx.clone());
        // A missing `host` is reported by the schema check.
        let host = self.host_attr(&mut r, block);
        let block_deps = self.depends_on(&mut r, block);
        let Some(host) = host else {
            r.finish(self.errors);
            return None;
        };
        let inst = Instance {
            block,
            label,
            address: address.clone(),
            ctx,
            each_sensitive,
            host: host.clone(),
        };
        let body = match kind {
            HostedKind::File => self.file_body(&mut r, &inst),
            HostedKind::Package => self.package_body(&mut r, &inst),
            HostedKind::Daemon => self.daemon_body(&mut r, &inst),
            HostedKind::FirewallRule => self.firewall_body(&mut r, &inst),
            HostedKind::Command => self.command_body(&mut r, &inst),
        };
        if !r.finish(self.errors) {
            return None;
        }
        let (body, block_deps) = (body?, block_deps?);
        let mut fields = body.fields;
        fields.push(("host", Value::from(host.as_str())));
        let value = obj(fields);
        if kind == HostedKind::File {
            let content = body.attrs["content"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            self.file_values.push(FileValue {
                value: value.clone(),
                address: Address::new(address.clone()),
                host: host.clone(),
                content,
                sensitive: body.sensitive.contains("content"),
            });
        }
        self.out.host_resources.push(HostItem {
            node: kind.node(label),
            resource: DesiredResource {
                address: Address::new(address),
                type_name: kind.type_name().to_string(),
                provider: ProviderKey(format!("{HOST_PREFIX}{host}")),
                attrs: body.attrs,
                sensitive_attrs: body.sensitive,
                depends_on: body.deps,
            },
            identity: body.identity,
            targets: targets.to_vec(),
            block_deps,
        });
        Some(value)
    }

    /// `depends_on = [package.nginx, file.site["a"]]`: references to blocks (or one
    /// instance of a block), read without evaluating them.
    fn depends_on(&self, r: &mut Reader, block: &RawBlock) -> Option<Vec<BlockDep>> {
        let Some(attr) = block.attr("depends_on") else {
            return Some(Vec::new());
        };
        let Expression::Array(items) = &attr.expr else {
            r.errors.push(
                ConfigError::new(
                    ErrorKind::WrongType,
                    "wrong type for \"depends_on\": expected a list of block references",
                )
                .at(&attr.loc, "not a list")
                .help(format!("write it like `depends_on = {DEPENDS_ON_EXAMPLE}`")),
            );
            return None;
        };
        let mut out = Vec::new();
        let mut ok = true;
        for (i, item) in items.iter().enumerate() {
            match self.block_dep(r, item) {
                Ok(d) => out.push(d),
                Err(label) => {
                    r.errors.push(
                        ConfigError::new(
                            ErrorKind::WrongType,
                            format!("depends_on[{i}] is not a reference to a block"),
                        )
                        .at(&item_loc(attr, i), label)
                        .help(format!(
                            "depends_on lists blocks whose resources are created first, such as {}; write it like `depends_on = {DEPENDS_ON_EXAMPLE}`",
                            list_names(&resource_kinds())
                        )),
                    );
                    ok = false;
                }
            }
        }
        ok.then_some(out)
    }

    /// One `depends_on` item; the error is the label.
    fn block_dep(&self, r: &mut Reader, item: &Expression) -> Result<BlockDep, String> {
        let not_ref = || "not a block reference".to_string();
        let Expression::Traversal(t) = item else {
            return Err(not_ref());
        };
        let Expression::Variable(root) = &t.expr else {
            return Err(not_ref());
        };
        let root = root.as_str();
        let Some(kind) = Kind::from_keyword(root).filter(|k| k.owns_resources()) else {
            return Err(format!("`{root}` is not a block with resources"));
        };
        let mut ops = t.operators.iter().map(|o| o.value());
        let Some(hcl::edit::expr::TraversalOperator::GetAttr(label)) = ops.next() else {
            return Err(not_ref());
        };
        let label = label.as_str();
        let node = Node::Block(kind, label.to_string());
        let key = match ops.next() {
            None => None,
            Some(hcl::edit::expr::TraversalOperator::Index(e)) => {
                let v = hcl::Expression::from(e.clone())
                    .evaluate(&r.ctx)
                    .map_err(|e| format!("cannot evaluate the key: {}", e.kind()))?;
                match v {
                    Value::String(s) => Some(s),
                    Value::Number(n) => Some(n.to_string()),
                    other => return Err(format!("the key is {}, not a string", describe(&other))),
                }
            }
            Some(hcl::edit::expr::TraversalOperator::LegacyIndex(n)) => Some(n.value().to_string()),
            Some(_) => return Err("refer to the whole block, like package.nginx".into()),
        };
        if ops.next().is_some() {
            return Err("refer to the block itself, not to one of its attributes".into());
        }
        let Some(key) = key else {
            return Ok(BlockDep {
                node,
                instance: None,
            });
        };
        let has_each = self
            .decls
            .block(&node)
            .is_some_and(|b| b.attr("for_each").is_some());
        if !has_each {
            return Err(format!(
                "{root}.{label} has no for_each; refer to it as {root}.{label}"
            ));
        }
        let known = self
            .ns
            .of(kind)
            .get(label)
            .and_then(Value::as_object)
            .is_some_and(|m| m.contains_key(&key));
        if !known {
            return Err(format!(
                "{root}.{label} has no instance \"{}\"",
                key.escape_debug()
            ));
        }
        Ok(BlockDep {
            node,
            instance: Some(format!("{root}.{label}[{}]", quote(&key))),
        })
    }

    /// The resource attributes whose block attribute is sensitive.
    fn sensitive_of(&self, inst: &Instance, pairs: &[(&str, &[&str])]) -> BTreeSet<String> {
        pairs
            .iter()
            .filter(|(_, from)| {
                from.iter()
                    .filter_map(|k| inst.block.attr(k))
                    .any(|a| self.is_sensitive(a, inst.each_sensitive))
            })
            .map(|(k, _)| k.to_string())
            .collect()
    }

    fn file_body(&mut self, r: &mut Reader, inst: &Instance) -> Option<Body> {
        let block = inst.block;
        let path = r.string(block, "path", "\"/etc/nginx/nginx.conf\"");
        if let Some((p, loc)) = &path {
            if let Err(why) = remote_path(p) {
                r.errors.push(
                    ConfigError::new(
                        ErrorKind::InvalidValue,
                        format!("invalid path \"{}\": {why}", p.escape_debug()),
                    )
                    .at(loc, why)
                    .help("a file's path on the host is absolute, e.g. \"/etc/nginx/sites-available/app\""),
                );
            }
        }
        let (content_attr, source_attr) = (block.attr("content"), block.attr("source"));
        let mut template_sensitive = false;
        let content = match (content_attr, source_attr) {
            (Some(c), Some(s)) => {
                r.errors.push(
                    ConfigError::new(
                        ErrorKind::InvalidValue,
                        "\"content\" and \"source\" are both set",
                    )
                    .at(&s.key_loc, "source set here")
                    .at(&c.key_loc, "content set here")
                    .help("a file's content comes from exactly one of them: `content = \"...\"` inline, or `source = \"templates/app.conf\"` (a template file); remove one"),
                );
                None
            }
            (None, None) => {
                r.errors.push(
                    ConfigError::new(
                        ErrorKind::MissingAttribute,
                        "missing \"content\" or \"source\"",
                    )
                    .at(&block.head_loc, "this file block has neither content nor source")
                    .help("add `content = \"...\"` for inline content, or `source = \"templates/app.conf\"` for a template file relative to the configuration directory"),
                );
                None
            }
            (Some(_), None) => r
                .string(block, "content", "\"bind 0.0.0.0\\n\"")
                .map(|c| c.0),
            (None, Some(attr)) => {
                let (source, loc) = r.string(block, "source", "\"templates/app.conf\"")?;
                let loaded;
                let template = match self.templates.get(inst.label) {
                    Some(Some(t)) => t,
                    // Read before evaluation failed: reported already.
                    Some(None) => return None,
                    None => match crate::templates::read(self.dir, &source, &loc) {
                        Ok(t) => {
                            for p in &t.problems {
                                r.errors.push(
                                    ConfigError::new(p.kind, p.message.clone())
                                        .at(
                                            &Loc::new(&t.file, Some(p.span.clone())),
                                            p.label.clone(),
                                        )
                                        .help(p.help.clone()),
                                );
                            }
                            loaded = t;
                            &loaded
                        }
                        Err(e) => {
                            r.errors.extend(e);
                            return None;
                        }
                    },
                };
                template_sensitive = self.refs_sensitive(&template.refs, inst.each_sensitive);
                match crate::templates::render(template, &inst.ctx, &attr.loc) {
                    Ok(s) => Some(s),
                    Err(e) => {
                        r.errors.push(e);
                        None
                    }
                }
            }
        };
        let mode = block.attr("mode").and_then(|attr| {
            let v = r.value(attr)?;
            let m = file_mode(&v);
            if m.is_none() {
                let shown = match &v {
                    Value::String(s) => format!("\"{}\"", s.escape_debug()),
                    other => other.to_string(),
                };
                r.errors.push(
                    ConfigError::new(
                        ErrorKind::InvalidValue,
                        format!("invalid file mode {shown}"),
                    )
                    .at(&attr.loc, "not an octal file mode")
                    .help("write the mode as three or four octal digits (0-7), e.g. mode = \"0644\" or mode = \"0755\""),
                );
            }
            m
        });
        let mut accounts = Vec::new();
        for key in ["owner", "group"] {
            let v = r.string(block, key, "\"root\"");
            if let Some((a, loc)) = &v {
                if !account(a) {
                    r.errors.push(
                        ConfigError::new(
                            ErrorKind::InvalidValue,
                            format!("invalid {key} \"{}\"", a.escape_debug()),
                        )
                        .at(loc, format!("not a valid {key} name"))
                        .help(format!("a {key} is an account name of letters, digits, `_`, `-` and `.`, e.g. \"www-data\"")),
                    );
                }
            }
            accounts.push(v.map(|x| x.0));
        }
        let ((path, path_loc), content) = (path?, content?);
        let mut attrs = Attrs::new();
        attrs.insert("path".into(), Json::from(path.as_str()));
        attrs.insert("content".into(), Json::from(content));
        if let Some(m) = mode {
            attrs.insert("mode".into(), Json::from(m));
        }
        for (key, v) in ["owner", "group"].into_iter().zip(accounts) {
            if let Some(v) = v {
                attrs.insert(key.into(), Json::from(v));
            }
        }
        let mut sensitive = self.sensitive_of(
            inst,
            &[
                ("path", &["path"]),
                ("content", &["content", "source"]),
                ("mode", &["mode"]),
                ("owner", &["owner"]),
                ("group", &["group"]),
            ],
        );
        if template_sensitive {
            sensitive.insert("content".into());
        }
        if sensitive.contains("content") {
            // The hash of a secret is as good as the secret to anyone who can guess the
            // rest of the file; and a secret file is private unless the mode says so.
            sensitive.insert("content_sha256".into());
            attrs
                .entry("mode".to_string())
                .or_insert_with(|| Json::from("0600"));
        }
        Some(Body {
            attrs,
            sensitive,
            identity: Some((format!("file path \"{path}\""), path_loc)),
            fields: vec![("path", Value::from(path))],
            deps: Vec::new(),
        })
    }

    /// `name`, or the block label; checked with `valid`.
    fn object_name(
        &self,
        r: &mut Reader,
        inst: &Instance,
        what: &str,
        valid: fn(&str) -> bool,
        help: &str,
    ) -> Option<(String, Loc)> {
        let rule = NameRule {
            default: inst.label,
            default_loc: inst.block.name_loc(),
            example: "\"nginx\"",
            what,
            kind: what,
            help,
        };
        r.name_or_default(inst.block, &rule, |n| {
            if valid(n) {
                Ok(())
            } else {
                Err(String::new())
            }
        })
    }

    fn package_body(&mut self, r: &mut Reader, inst: &Instance) -> Option<Body> {
        let block = inst.block;
        let name = self.object_name(
            r,
            inst,
            "package",
            package_name,
            "Debian package names have at least two characters: lower-case letters, digits, `+`, `-` and `.`, starting with a letter or digit (e.g. \"redis-server\"), optionally followed by `:arch`",
        );
        let state = r
            .string(block, "state", "\"present\"")
            .filter(|s| one_of(r, "state", s, &["present", "absent"], "not a package state"));
        let version = r.string(block, "version", "\"5:7.0.15-1~deb12u1\"");
        if let Some((v, loc)) = &version {
            if !package_version(v) {
                r.errors.push(
                    ConfigError::new(
                        ErrorKind::InvalidValue,
                        format!("invalid package version \"{}\"", v.escape_debug()),
                    )
                    .at(loc, "not a Debian version")
                    .help("a Debian version starts with a digit and has only letters, digits and `.+~:-`, e.g. \"5:7.0.15-1~deb12u1\" (see `apt-cache policy <package>`)"),
                );
            }
        }
        if let (Some((s, sloc)), Some(_)) = (&state, &version) {
            if s == "absent" {
                r.errors.push(
                    ConfigError::new(
                        ErrorKind::InvalidValue,
                        "a version makes no sense with state = \"absent\"",
                    )
                    .at(sloc, "the package is removed")
                    .help("remove `version`, or set state = \"present\""),
                );
            }
        }
        let (name, name_loc) = name?;
        let mut attrs = Attrs::new();
        attrs.insert("name".into(), Json::from(name.as_str()));
        if let Some((s, _)) = &state {
            attrs.insert("state".into(), Json::from(s.as_str()));
        }
        if let Some((v, _)) = &version {
            attrs.insert("version".into(), Json::from(v.as_str()));
        }
        let sensitive = self.sensitive_of(
            inst,
            &[
                ("name", &["name"]),
                ("state", &["state"]),
                ("version", &["version"]),
            ],
        );
        Some(Body {
            attrs,
            sensitive,
            identity: Some((format!("package \"{name}\""), name_loc)),
            fields: vec![("name", Value::from(name))],
            deps: Vec::new(),
        })
    }

    fn daemon_body(&mut self, r: &mut Reader, inst: &Instance) -> Option<Body> {
        let block = inst.block;
        let name = self.object_name(
            r,
            inst,
            "service",
            service_name,
            "service names have letters, digits and `@._:-`, and do not start with `-` or `.` (e.g. \"nginx\" or \"php8.2-fpm\")",
        );
        let running = r.bool(block, "running");
        let enabled = r.bool(block, "enabled");
        let restart = block
            .attr("restart_on")
            .and_then(|attr| self.restart_on(r, attr, &inst.host));
        let (name, name_loc) = name?;
        let mut attrs = Attrs::new();
        attrs.insert("name".into(), Json::from(name.as_str()));
        if let Some(b) = running {
            attrs.insert("running".into(), Json::Bool(b));
        }
        if let Some(b) = enabled {
            attrs.insert("enabled".into(), Json::Bool(b));
        }
        let mut sensitive = self.sensitive_of(
            inst,
            &[
                ("name", &["name"]),
                ("running", &["running"]),
                ("enabled", &["enabled"]),
                ("restart_on", &["restart_on"]),
            ],
        );
        let mut deps = Vec::new();
        if let Some(files) = restart {
            let contents: Vec<&str> = files.iter().map(|f| f.content.as_str()).collect();
            attrs.insert("restart_on".into(), Json::from(restart_token(&contents)));
            // A hash of a secret is as good as the secret for guessing it.
            if files.iter().any(|f| f.sensitive) {
                sensitive.insert("restart_on".into());
            }
            deps.extend(files.into_iter().map(|f| f.address));
        } else if block.attr("restart_on").is_some() {
            return None;
        }
        Some(Body {
            attrs,
            sensitive,
            identity: Some((format!("service \"{name}\""), name_loc)),
            fields: vec![("name", Value::from(name))],
            deps,
        })
    }

    /// `restart_on`: a list of file references (a for_each block stands for all its
    /// instances), in order.
    fn restart_on(&self, r: &mut Reader, attr: &RawAttr, host: &str) -> Option<Vec<FileValue>> {
        let example = "[file.nginx_site]";
        let v = r.value(attr)?;
        let Value::Array(items) = &v else {
            r.errors.push(wrong_type(
                attr,
                &attr.loc,
                "restart_on",
                "a list of file references",
                &v,
                example,
            ));
            return None;
        };
        let find = |v: &Value| self.file_values.iter().find(|f| &f.value == v);
        let mut out = Vec::new();
        let mut ok = true;
        for (i, item) in items.iter().enumerate() {
            let files: Option<Vec<&FileValue>> = find(item).map(|f| vec![f]).or_else(|| {
                let Value::Object(map) = item else {
                    return None;
                };
                let all: Option<Vec<&FileValue>> = map.values().map(find).collect();
                all.filter(|a| !a.is_empty())
            });
            let at = item_loc(attr, i);
            let Some(files) = files else {
                // Say what it refers to when it is written as a reference.
                let what = match &attr.expr {
                    Expression::Array(a) => match a.iter().nth(i) {
                        Some(Expression::Traversal(t)) => match &t.expr {
                            Expression::Variable(root) if root.as_str() != "file" => {
                                Some(format!("a {} reference, not a file", root.as_str()))
                            }
                            _ => None,
                        },
                        _ => None,
                    },
                    _ => None,
                };
                r.errors.push(
                    ConfigError::new(
                        ErrorKind::WrongType,
                        format!(
                            "restart_on[{i}] is not a file reference: found {}",
                            describe(item)
                        ),
                    )
                    .at(&at, what.unwrap_or_else(|| "not a file block".into()))
                    .help(format!(
                        "restart_on lists the file blocks the service reads, e.g. `restart_on = {example}` or `[file.conf[\"key\"]]`; the service restarts when their content changes"
                    )),
                );
                ok = false;
                continue;
            };
            for f in files {
                if f.host != host {
                    r.errors.push(
                        ConfigError::new(
                            ErrorKind::InvalidValue,
                            format!(
                                "restart_on[{i}] is a file on host \"{}\", but this service runs on host \"{host}\"",
                                f.host
                            ),
                        )
                        .at(&at, format!("{} is on host \"{}\"", f.address, f.host))
                        .help("a service restarts when files on its own host change; refer to files with the same `host`"),
                    );
                    ok = false;
                    continue;
                }
                out.push(f.clone());
            }
        }
        ok.then_some(out)
    }

    fn firewall_body(&mut self, r: &mut Reader, inst: &Instance) -> Option<Body> {
        let block = inst.block;
        let port = r.int(block, "port", (1, 65535), "6379");
        let proto = r
            .string(block, "proto", "\"tcp\"")
            .filter(|p| one_of(r, "proto", p, &["tcp", "udp"], "not a protocol"));
        let allow_from = block.attr("allow_from").and_then(|attr| {
            let list = r.string_list(attr, "[\"10.0.0.0/24\", host.web1.address]")?;
            let mut ok = true;
            for (i, s) in list.iter().enumerate() {
                if let Err(why) = source_address(s) {
                    r.errors.push(
                        ConfigError::new(
                            ErrorKind::InvalidValue,
                            format!("invalid allow_from[{i}] \"{}\": {why}", s.escape_debug()),
                        )
                        .at(&item_loc(attr, i), "not an IP address or CIDR network")
                        .help("allow_from takes IPv4 or IPv6 addresses and networks such as \"10.0.0.10\", \"10.0.0.0/24\" or \"fd00::/8\"; host names are not resolved"),
                    );
                    ok = false;
                }
            }
            ok.then_some(list)
        });
        let comment = r.string(block, "comment", "\"app servers only\"");
        if let Some((c, loc)) = &comment {
            let full = format!("terrace:{} # {c}", inst.address);
            let why = if c.contains(['\n', '\0']) {
                Some("the comment must be one line".to_string())
            } else if full.len() > MAX_NFT_COMMENT {
                Some(format!(
                    "the rule's nftables comment \"{}\" would be {} bytes, more than the {MAX_NFT_COMMENT} nftables keeps",
                    full.escape_debug(),
                    full.len()
                ))
            } else {
                None
            };
            if let Some(why) = why {
                r.errors.push(
                    ConfigError::new(ErrorKind::InvalidValue, format!("invalid comment: {why}"))
                        .at(loc, "this comment")
                        .help("shorten the comment to one short line"),
                );
            }
        }
        let (port, allow_from) = (port?, allow_from?);
        let port_loc = block.attr("port").map(|a| a.loc.clone())?;
        let proto_name = proto.as_ref().map_or("tcp", |p| p.0.as_str()).to_string();
        let mut attrs = Attrs::new();
        attrs.insert("port".into(), Json::from(port));
        if let Some((p, _)) = &proto {
            attrs.insert("proto".into(), Json::from(p.as_str()));
        }
        attrs.insert("allow_from".into(), Json::from(allow_from));
        if let Some((c, _)) = &comment {
            attrs.insert("comment".into(), Json::from(c.as_str()));
        }
        let sensitive = self.sensitive_of(
            inst,
            &[
                ("port", &["port"]),
                ("proto", &["proto"]),
                ("allow_from", &["allow_from"]),
                ("comment", &["comment"]),
            ],
        );
        Some(Body {
            attrs,
            sensitive,
            identity: Some((
                format!("firewall rule for port {port}/{proto_name}"),
                port_loc,
            )),
            fields: vec![
                ("port", Value::from(port)),
                ("proto", Value::from(proto_name)),
            ],
            deps: Vec::new(),
        })
    }

    fn command_body(&mut self, r: &mut Reader, inst: &Instance) -> Option<Body> {
        let block = inst.block;
        let command = r.string(block, "command", "\"mkswap /swapfile\"");
        if let Some((c, loc)) = &command {
            if c.trim().is_empty() {
                r.errors.push(
                    ConfigError::new(ErrorKind::InvalidValue, "the command is empty")
                        .at(loc, "empty")
                        .help(
                            "write the shell command to run, e.g. command = \"mkswap /swapfile\"",
                        ),
                );
            }
        }
        let creates = r.string(block, "creates", "\"/swapfile\"");
        if let Some((c, loc)) = &creates {
            if let Err(why) = remote_path(c) {
                r.errors.push(
                    ConfigError::new(
                        ErrorKind::InvalidValue,
                        format!("invalid creates \"{}\": {why}", c.escape_debug()),
                    )
                    .at(loc, why)
                    .help("`creates` is the absolute path of a file the command makes; the command is skipped while it exists"),
                );
            }
        }
        let unless = r.string(block, "unless", "\"swapon --show | grep -q swapfile\"");
        let (command, _) = command?;
        let mut attrs = Attrs::new();
        attrs.insert("command".into(), Json::from(command));
        if let Some((c, _)) = creates {
            attrs.insert("creates".into(), Json::from(c));
        }
        if let Some((u, _)) = unless {
            attrs.insert("unless".into(), Json::from(u));
        }
        let sensitive = self.sensitive_of(
            inst,
            &[
                ("command", &["command"]),
                ("creates", &["creates"]),
                ("unless", &["unless"]),
            ],
        );
        Some(Body {
            attrs,
            sensitive,
            identity: None,
            fields: Vec::new(),
            deps: Vec::new(),
        })
    }
}
