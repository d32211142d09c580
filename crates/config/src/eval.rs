//! Evaluating blocks in dependency order.
//!
//! Each evaluated block is declared in the hcl-rs context under its namespace
//! (`local`, `host`, `service`, `tenant`, `database`, `image`, `network`, `volume`,
//! `file`, `package`, `daemon`, `firewall_rule`, `command`) before its dependents run.
//! Inside a tenant instance, databases and volumes are evaluated first, then the app
//! block with `self` declared.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use hcl::edit::expr::{Expression, ObjectKey};
use hcl::edit::Span;
use hcl::eval::{Context, Evaluate};
use hcl::{Map, Value};
use terrace_provider::Address;

use crate::diagnostics::{list_names, suggest, ConfigError, ErrorKind};
use crate::graph::{Node, Plan};
use crate::lower::{DbInstance, DbItem, DockerItem, HostItem};
use crate::refs::{Ref, Target};
use crate::source::Loc;
use crate::syntax::{Decls, RawAttr, RawBlock};
use crate::templates::Templates;
use crate::types::describe;
use crate::validate::{self, SqlName};
use crate::variables::Variables;
use crate::{Engine, HostKeyCheck, HostSpec, ServiceSpec, SqlEndpoint};

mod docker;
mod host;

/// Evaluates one expression, attaching `loc` to any error (hcl-rs errors carry none).
pub(crate) fn evaluate(
    expr: &Expression,
    loc: &Loc,
    ctx: &Context<'static>,
) -> Result<Value, ConfigError> {
    hcl::Expression::from(expr.clone()).evaluate(ctx).map_err(|e| {
        let help = match e.kind() {
            hcl::eval::ErrorKind::NoSuchKey(_) | hcl::eval::ErrorKind::Index(_) => {
                "the referenced value has no such key or index; check the name and the value it refers to"
            }
            hcl::eval::ErrorKind::FuncCall(..) => "check the function's arguments",
            _ => "check the types of the values this expression uses",
        };
        ConfigError::new(ErrorKind::Eval, format!("cannot evaluate expression: {}", e.kind()))
            .at(loc, "while evaluating this expression")
            .help(help)
    })
}

/// Everything evaluation produces.
#[derive(Debug, Default)]
pub(crate) struct Evaluated {
    pub hosts: BTreeMap<String, HostSpec>,
    pub services: BTreeMap<String, ServiceSpec>,
    /// Database instances, with their owning blocks.
    pub databases: Vec<DbItem>,
    /// Images, networks, volumes and containers, as resources.
    pub docker: Vec<DockerItem>,
    /// Files, packages, services, firewall rules and commands on SSH hosts.
    pub host_resources: Vec<HostItem>,
    pub secrets: Vec<String>,
}

struct State<'a> {
    decls: &'a Decls,
    vars: &'a Variables,
    base: Context<'static>,
    /// The configuration directory (relative image sources resolve against it).
    dir: &'a Path,
    /// Values declared under each namespace.
    ns: BTreeMap<&'static str, Map<String, Value>>,
    sensitive_locals: BTreeSet<String>,
    /// While evaluating an app block: the paths under `self` that are sensitive
    /// (`["database", "name"]` when the database name came from a sensitive variable).
    self_sensitive: Vec<Vec<String>>,
    /// The values of evaluated image, network and volume instances with their Docker
    /// names: a value equal to one of them is a reference to it.
    docker_values: BTreeMap<&'static str, Vec<(Value, String)>>,
    /// Templates read before evaluation, by file block label.
    templates: &'a Templates,
    /// Evaluated file instances: a value equal to one of them is a reference to it.
    file_values: Vec<host::FileValue>,
    out: Evaluated,
    errors: &'a mut Vec<ConfigError>,
}

/// Evaluates every node of the plan in order.
pub(crate) fn run(
    decls: &Decls,
    vars: &Variables,
    plan: &Plan,
    templates: &Templates,
    base: Context<'static>,
    dir: &Path,
    errors: &mut Vec<ConfigError>,
) -> Evaluated {
    let mut st = State {
        decls,
        vars,
        base,
        dir,
        ns: [
            "local",
            "host",
            "service",
            "tenant",
            "database",
            "image",
            "network",
            "volume",
            "file",
            "package",
            "daemon",
            "firewall_rule",
            "command",
        ]
        .into_iter()
        .map(|k| (k, Map::new()))
        .collect(),
        sensitive_locals: BTreeSet::new(),
        self_sensitive: Vec::new(),
        docker_values: BTreeMap::new(),
        templates,
        file_values: Vec::new(),
        out: Evaluated::default(),
        errors,
    };
    let mut failed: BTreeSet<Node> = plan.broken.clone();
    for node in &plan.order {
        let deps_failed = plan.refs[node]
            .iter()
            .any(|r| match target_node(&r.target) {
                Some(dep) => failed.contains(&dep),
                None => false,
            });
        if failed.contains(node) || deps_failed {
            // Its own errors, or those of a dependency, are reported already.
            failed.insert(node.clone());
            continue;
        }
        let ok = match node {
            Node::Local(n) => st.local(n),
            Node::Host(n) => st.host(n),
            Node::Service(n) => st.service(n),
            Node::Tenant(n) => st.tenant(n),
            Node::Database(n) => st.top_database(n),
            Node::Image(n) => st.image(n),
            Node::Network(n) => st.network(n),
            Node::Volume(n) => st.volume(n),
            Node::File(n) => st.hosted(n, host::Kind::File),
            Node::Package(n) => st.hosted(n, host::Kind::Package),
            Node::Daemon(n) => st.hosted(n, host::Kind::Daemon),
            Node::FirewallRule(n) => st.hosted(n, host::Kind::FirewallRule),
            Node::Command(n) => st.hosted(n, host::Kind::Command),
        };
        if !ok {
            failed.insert(node.clone());
        }
    }
    st.out
}

fn target_node(t: &Target) -> Option<Node> {
    match t {
        Target::Local(n) => Some(Node::Local(n.clone())),
        Target::Host(n) => Some(Node::Host(n.clone())),
        Target::Service(n) => Some(Node::Service(n.clone())),
        Target::Tenant(n) => Some(Node::Tenant(n.clone())),
        Target::Database(n) => Some(Node::Database(n.clone())),
        Target::Image(n) => Some(Node::Image(n.clone())),
        Target::Network(n) => Some(Node::Network(n.clone())),
        Target::Volume(n) => Some(Node::Volume(n.clone())),
        Target::File(n) => Some(Node::File(n.clone())),
        Target::Package(n) => Some(Node::Package(n.clone())),
        Target::Daemon(n) => Some(Node::Daemon(n.clone())),
        Target::FirewallRule(n) => Some(Node::FirewallRule(n.clone())),
        Target::Command(n) => Some(Node::Command(n.clone())),
        _ => None,
    }
}

/// The blocks every reference of these attributes points at.
fn block_targets<'a>(attrs: impl IntoIterator<Item = &'a RawAttr>) -> Vec<Target> {
    attrs
        .into_iter()
        .flat_map(|a| crate::refs::collect(&a.expr).0)
        .map(|r| r.target)
        .collect()
}

/// The value expression of `key` inside an object literal.
fn object_field<'e>(expr: &'e Expression, key: &str) -> Option<&'e Expression> {
    let Expression::Object(obj) = expr else {
        return None;
    };
    obj.iter().find_map(|(k, v)| {
        let name = match k {
            ObjectKey::Ident(i) => Some(i.as_str()),
            ObjectKey::Expression(e) => e.as_str(),
        };
        (name == Some(key)).then(|| v.expr())
    })
}

/// The location of `key` inside an object literal, or of the whole expression.
fn field_loc(attr: &RawAttr, key: &str) -> Loc {
    match object_field(&attr.expr, key) {
        Some(e) => Loc::new(&attr.loc.file, e.span()),
        None => attr.loc.clone(),
    }
}

/// The location of element `i` of a list literal, or of the whole expression.
fn item_loc(attr: &RawAttr, i: usize) -> Loc {
    match &attr.expr {
        Expression::Array(a) => match a.iter().nth(i) {
            Some(e) => Loc::new(&attr.loc.file, e.span()),
            None => attr.loc.clone(),
        },
        _ => attr.loc.clone(),
    }
}

/// The location of `key` in object element `i` of a list literal, else of the element.
fn item_field_loc(attr: &RawAttr, i: usize, key: &str) -> Loc {
    if let Expression::Array(a) = &attr.expr {
        if let Some(e) = a.iter().nth(i).and_then(|e| object_field(e, key)) {
            return Loc::new(&attr.loc.file, e.span());
        }
    }
    item_loc(attr, i)
}

fn wrong_type(
    attr: &RawAttr,
    loc: &Loc,
    field: &str,
    expected: &str,
    found: &Value,
    example: &str,
) -> ConfigError {
    ConfigError::new(
        ErrorKind::WrongType,
        format!(
            "wrong type for \"{field}\": expected {expected}, found {}",
            describe(found)
        ),
    )
    .at(loc, format!("this is {}", describe(found)))
    .help(format!("write it like `{} = {example}`", attr.key))
}

/// Reads typed attribute values from one block, recording errors.
struct Reader {
    ctx: Context<'static>,
    errors: Vec<ConfigError>,
}

impl Reader {
    fn new(ctx: Context<'static>) -> Self {
        Reader {
            ctx,
            errors: Vec::new(),
        }
    }

    fn value(&mut self, attr: &RawAttr) -> Option<Value> {
        match evaluate(&attr.expr, &attr.loc, &self.ctx) {
            Ok(v) => Some(v),
            Err(e) => {
                self.errors.push(e);
                None
            }
        }
    }

    fn string_of(
        &mut self,
        attr: &RawAttr,
        loc: &Loc,
        field: &str,
        v: &Value,
        example: &str,
    ) -> Option<String> {
        match v {
            Value::String(s) => Some(s.clone()),
            other => {
                self.errors
                    .push(wrong_type(attr, loc, field, "a string", other, example));
                None
            }
        }
    }

    fn string(&mut self, block: &RawBlock, key: &str, example: &str) -> Option<(String, Loc)> {
        let attr = block.attr(key)?;
        let v = self.value(attr)?;
        self.string_of(attr, &attr.loc, key, &v, example)
            .map(|s| (s, attr.loc.clone()))
    }

    fn int_of(
        &mut self,
        attr: &RawAttr,
        loc: &Loc,
        field: &str,
        v: &Value,
        range: (i64, i64),
        example: &str,
    ) -> Option<i64> {
        let n = match v {
            Value::Number(n) => n.as_f64().filter(|f| f.fract() == 0.0).map(|f| f as i64),
            other => {
                self.errors
                    .push(wrong_type(attr, loc, field, "a number", other, example));
                return None;
            }
        };
        match n {
            Some(n) if n >= range.0 && n <= range.1 => Some(n),
            _ => {
                self.errors.push(
                    ConfigError::new(
                        ErrorKind::InvalidValue,
                        format!("invalid value for \"{field}\": {v}"),
                    )
                    .at(loc, "out of range")
                    .help(format!(
                        "\"{field}\" must be a whole number from {} to {}",
                        range.0, range.1
                    )),
                );
                None
            }
        }
    }

    fn int(
        &mut self,
        block: &RawBlock,
        key: &str,
        range: (i64, i64),
        example: &str,
    ) -> Option<i64> {
        let attr = block.attr(key)?;
        let v = self.value(attr)?;
        self.int_of(attr, &attr.loc, key, &v, range, example)
    }

    /// `name`, or `default` when the block leaves it unset, checked with `check`. The
    /// error points at the value (or at `default_loc` for a defaulted name), names the
    /// `kind` of name expected, and says how to choose another when it was defaulted.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn name_or_default(
        &mut self,
        block: &RawBlock,
        default: &str,
        default_loc: &Loc,
        example: &str,
        what: &str,
        kind: &str,
        check: impl Fn(&str) -> Result<(), String>,
        help: &str,
    ) -> Option<(String, Loc)> {
        let (name, loc, defaulted) = match block.attr("name") {
            Some(_) => {
                let (n, loc) = self.string(block, "name", example)?;
                (n, loc, false)
            }
            None => (default.to_string(), default_loc.clone(), true),
        };
        let Err(msg) = check(&name) else {
            return Some((name, loc));
        };
        let mut help = help.to_string();
        if defaulted {
            help.push_str(&format!(
                "; the name defaults to \"{}\" here, set `name = ...` in the block to choose another",
                default.escape_debug()
            ));
        }
        let detail = if msg.is_empty() {
            String::new()
        } else {
            format!(": {msg}")
        };
        self.errors.push(
            ConfigError::new(
                ErrorKind::InvalidIdentifier,
                format!("invalid {what} name \"{}\"{detail}", name.escape_debug()),
            )
            .at(
                &loc,
                if defaulted {
                    format!("the defaulted name is not a valid {kind} name")
                } else {
                    format!("not a valid {kind} name")
                },
            )
            .help(help),
        );
        None
    }

    fn bool(&mut self, block: &RawBlock, key: &str) -> Option<bool> {
        let attr = block.attr(key)?;
        match self.value(attr)? {
            Value::Bool(b) => Some(b),
            other => {
                self.errors
                    .push(wrong_type(attr, &attr.loc, key, "a bool", &other, "true"));
                None
            }
        }
    }

    /// Checks the keys of an evaluated object written in attribute `field`: every key is
    /// allowed (did-you-mean otherwise, at `key_loc(key)`) and every required key is
    /// present (pointing at `whole`). Returns false if anything was reported.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn check_keys(
        &mut self,
        map: &Map<String, Value>,
        allowed: &[&str],
        required: &[&str],
        field: &str,
        key_loc: impl Fn(&str) -> Loc,
        whole: &Loc,
        write_like: &str,
    ) -> bool {
        let mut ok = true;
        for k in map.keys().filter(|k| !allowed.contains(&k.as_str())) {
            self.errors.push(
                ConfigError::new(
                    ErrorKind::UnknownAttribute,
                    format!("unknown attribute \"{k}\" in \"{field}\""),
                )
                .at(&key_loc(k), "unknown attribute")
                .help(suggest(k, allowed.iter().copied(), |all| {
                    format!("allowed attributes: {}", list_names(&all))
                })),
            );
            ok = false;
        }
        for k in required.iter().filter(|k| !map.contains_key(**k)) {
            self.errors.push(
                ConfigError::new(
                    ErrorKind::MissingAttribute,
                    format!("missing required attribute \"{k}\" in \"{field}\""),
                )
                .at(whole, format!("no \"{k}\" here"))
                .help(format!("write it like `{write_like}`")),
            );
            ok = false;
        }
        ok
    }

    /// Evaluates an object-valued attribute and checks its keys.
    fn object(
        &mut self,
        attr: &RawAttr,
        allowed: &[&str],
        required: &[&str],
        example: &str,
    ) -> Option<Map<String, Value>> {
        let v = self.value(attr)?;
        let Value::Object(map) = v else {
            self.errors.push(wrong_type(
                attr,
                &attr.loc,
                &attr.key,
                "an object",
                &v,
                example,
            ));
            return None;
        };
        let write_like = format!("{} = {example}", attr.key);
        let ok = self.check_keys(
            &map,
            allowed,
            required,
            &attr.key,
            |k| key_loc(attr, k),
            &attr.loc,
            &write_like,
        );
        ok.then_some(map)
    }

    fn finish(self, errors: &mut Vec<ConfigError>) -> bool {
        let ok = self.errors.is_empty();
        errors.extend(self.errors);
        ok
    }
}

/// The location of a key inside an object literal.
fn key_loc(attr: &RawAttr, key: &str) -> Loc {
    key_in_object(&attr.expr, attr, key).unwrap_or_else(|| attr.loc.clone())
}

/// Where `key` is written, if `expr` is an object literal of `attr`'s file.
pub(crate) fn key_in_object(expr: &Expression, attr: &RawAttr, key: &str) -> Option<Loc> {
    let Expression::Object(obj) = expr else {
        return None;
    };
    obj.iter().find_map(|(k, _)| {
        let (name, span) = match k {
            ObjectKey::Ident(i) => (Some(i.as_str()), i.span()),
            ObjectKey::Expression(e) => (e.as_str(), e.span()),
        };
        (name == Some(key)).then(|| Loc::new(&attr.loc.file, span))
    })
}

fn obj(pairs: Vec<(&str, Value)>) -> Value {
    Value::Object(pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
}

impl State<'_> {
    fn ctx(&self) -> Context<'static> {
        let mut ctx = self.base.clone();
        for (k, v) in &self.ns {
            ctx.declare_var(*k, Value::Object(v.clone()));
        }
        ctx
    }

    /// True if an expression refers to a sensitive variable, a sensitive local,
    /// `each.value` of a sensitive for_each, a database password, or a sensitive part
    /// of `self`.
    fn is_sensitive(&self, attr: &RawAttr, each_sensitive: bool) -> bool {
        let (refs, _) = crate::refs::collect(&attr.expr);
        self.refs_sensitive(&refs, each_sensitive)
    }

    /// True if one of these references reads a sensitive value (see `is_sensitive`).
    fn refs_sensitive(&self, refs: &[Ref], each_sensitive: bool) -> bool {
        refs.iter().any(|r| {
            r.reads_password()
                || match &r.target {
                    Target::Var(v) => self.vars.sensitive.contains(v),
                    Target::Local(l) => self.sensitive_locals.contains(l),
                    Target::EachValue => each_sensitive,
                    Target::SelfRef(root) => {
                        let mut path = vec![root.clone()];
                        path.extend(r.path.iter().cloned());
                        // Reading a sensitive field, or an object that contains one.
                        self.self_sensitive
                            .iter()
                            .any(|p| p.starts_with(&path) || path.starts_with(p))
                    }
                    _ => false,
                }
        })
    }

    fn local(&mut self, name: &str) -> bool {
        let attr = &self.decls.locals[name];
        match evaluate(&attr.expr, &attr.loc, &self.ctx()) {
            Ok(v) => {
                if self.is_sensitive(attr, false) {
                    self.sensitive_locals.insert(name.to_string());
                }
                self.ns
                    .get_mut("local")
                    .expect("namespace")
                    .insert(name.to_string(), v);
                true
            }
            Err(e) => {
                self.errors.push(e);
                false
            }
        }
    }

    fn host(&mut self, name: &str) -> bool {
        let block = &self.decls.hosts[name];
        let mut r = Reader::new(self.ctx());
        let address = r.string(block, "address", "\"10.0.0.5\"");
        let port = block
            .attr("port")
            .map(|_| r.int(block, "port", (1, 65535), "22"));
        let user = r.string(block, "user", "\"deploy\"");
        let identity_file = r
            .string(block, "identity_file", "\"~/.ssh/id_ed25519\"")
            .and_then(|(p, loc)| host::local_path(&mut r, self.dir, "identity_file", &p, &loc));
        let known_hosts = r
            .string(block, "known_hosts", "\"known_hosts\"")
            .and_then(|(p, loc)| host::local_path(&mut r, self.dir, "known_hosts", &p, &loc));
        let host_key_check = r
            .string(block, "host_key_check", "\"strict\"")
            .and_then(|(v, loc)| {
                let parsed = HostKeyCheck::ALL.into_iter().find(|x| x.as_str() == v);
                if parsed.is_none() {
                    let allowed = HostKeyCheck::ALL.map(HostKeyCheck::as_str);
                    r.errors.push(
                        ConfigError::new(
                            ErrorKind::InvalidValue,
                            format!("unknown host_key_check \"{}\"", v.escape_debug()),
                        )
                        .at(&loc, "not a host key policy")
                        .help(suggest(&v, allowed, |all| {
                            format!(
                                "host_key_check must be {} (\"strict\" refuses unknown host keys; \"accept-new\" records them on first contact)",
                                list_names(&all)
                            )
                        })),
                    );
                }
                parsed
            });
        let become_root = r.bool(block, "become");
        let docker_example = "{ socket = \"/var/run/docker.sock\" }";
        let docker_socket = block.attr("docker").and_then(|attr| {
            let map = r.object(attr, &["socket"], &[], docker_example)?;
            match map.get("socket") {
                Some(v) => r.string_of(
                    attr,
                    &field_loc(attr, "socket"),
                    "socket",
                    v,
                    docker_example,
                ),
                None => None,
            }
        });
        if !r.finish(self.errors) {
            return false;
        }
        let Some((address, _)) = address else {
            return false;
        };
        let spec = HostSpec {
            name: name.to_string(),
            address,
            port: port.flatten().unwrap_or(22) as u16,
            user: user.map_or_else(|| "root".to_string(), |u| u.0),
            identity_file,
            known_hosts,
            host_key_check: host_key_check.unwrap_or_default(),
            become_root: become_root.unwrap_or(false),
            docker_socket,
        };
        let value = obj(vec![
            ("name", Value::from(name)),
            ("address", Value::from(spec.address.as_str())),
            ("port", Value::from(spec.port)),
            ("user", Value::from(spec.user.as_str())),
            (
                "identity_file",
                spec.identity_file.clone().map_or(Value::Null, Value::from),
            ),
            (
                "known_hosts",
                spec.known_hosts.clone().map_or(Value::Null, Value::from),
            ),
            ("host_key_check", Value::from(spec.host_key_check.as_str())),
            ("become", Value::Bool(spec.become_root)),
            (
                "docker",
                match &spec.docker_socket {
                    Some(s) => obj(vec![("socket", Value::from(s.as_str()))]),
                    None => Value::Null,
                },
            ),
        ]);
        self.ns
            .get_mut("host")
            .expect("namespace")
            .insert(name.to_string(), value);
        self.out.hosts.insert(name.to_string(), spec);
        true
    }

    fn service(&mut self, name: &str) -> bool {
        let decls = self.decls;
        let block = &decls.services[name];
        let mut r = Reader::new(self.ctx());
        let engine = r
            .string(block, "engine", "\"postgres\"")
            .and_then(|(e, loc)| {
                let parsed = Engine::ALL.into_iter().find(|x| x.as_str() == e);
                if parsed.is_none() {
                    let allowed = Engine::ALL.map(Engine::as_str);
                    r.errors.push(
                        ConfigError::new(
                            ErrorKind::InvalidValue,
                            format!("unknown engine \"{e}\""),
                        )
                        .at(&loc, "unknown engine")
                        .help(suggest(&e, allowed, |all| {
                            format!("engine must be {}", list_names(&all))
                        })),
                    );
                }
                parsed
            });
        let is_sql = engine.map(Engine::is_sql);
        let endpoint_example = "{ address = \"127.0.0.1\", port = 5432 }";
        let admin_example = "{ user = \"terrace_admin\", password = var.admin_password }";
        for (key, example) in [("endpoint", endpoint_example), ("admin", admin_example)] {
            match (is_sql, block.attr(key)) {
                (Some(false), Some(attr)) => {
                    let engine = engine.expect("known engine");
                    r.errors.push(
                        ConfigError::new(
                            ErrorKind::Unsupported,
                            format!("\"{key}\" is not used by a {engine} service"),
                        )
                        .at(&attr.key_loc, format!("not for engine \"{engine}\""))
                        .help(format!(
                            "remove \"{key}\": terrace runs a {engine} service as a container and does not log in to it; only postgres, mysql and mariadb services take endpoint and admin"
                        )),
                    );
                }
                (Some(true), None) => r.errors.push(
                    ConfigError::new(
                        ErrorKind::MissingAttribute,
                        format!("missing required attribute \"{key}\""),
                    )
                    .at(&block.head_loc, format!("this service block has no \"{key}\""))
                    .help(format!(
                        "add `{key} = {example}` to the block: terrace logs in to a {} server to manage its databases",
                        engine.expect("known engine")
                    )),
                ),
                _ => {}
            }
        }
        let endpoint = block
            .attr("endpoint")
            .filter(|_| is_sql != Some(false))
            .and_then(|attr| {
                let map = r.object(attr, &["address", "port"], &["address"], endpoint_example)?;
                let address = r.string_of(
                    attr,
                    &field_loc(attr, "address"),
                    "address",
                    &map["address"],
                    endpoint_example,
                )?;
                let port = match map.get("port") {
                    Some(p) => Some(r.int_of(
                        attr,
                        &field_loc(attr, "port"),
                        "port",
                        p,
                        (1, 65535),
                        endpoint_example,
                    )?),
                    None => None,
                };
                Some((address, port))
            });
        let admin = block
            .attr("admin")
            .filter(|_| is_sql != Some(false))
            .and_then(|attr| {
                let map = r.object(
                    attr,
                    &["user", "password"],
                    &["user", "password"],
                    admin_example,
                )?;
                let user = r.string_of(
                    attr,
                    &field_loc(attr, "user"),
                    "user",
                    &map["user"],
                    admin_example,
                )?;
                let password = r.string_of(
                    attr,
                    &field_loc(attr, "password"),
                    "password",
                    &map["password"],
                    admin_example,
                )?;
                Some((user, password))
            });
        let host = self.host_attr(&mut r, block);
        let containers: Vec<&RawBlock> = block
            .blocks
            .iter()
            .filter(|b| b.kind == "container")
            .collect();
        for extra in containers.iter().skip(1) {
            r.errors.push(
                ConfigError::new(
                    ErrorKind::Duplicate,
                    format!("service \"{name}\" has more than one container block"),
                )
                .at(&extra.head_loc, "another container block")
                .at(&containers[0].head_loc, "first container block")
                .help("a service runs in one container; declare another service for another container"),
            );
        }
        if let (Some(engine), Some(false), None) = (engine, is_sql, containers.first()) {
            r.errors.push(
                ConfigError::new(
                    ErrorKind::MissingAttribute,
                    "missing required block \"container\"",
                )
                .at(&block.head_loc, "this service block has no container block")
                .help(format!(
                    "add `container {{ image = ... }}`: a {engine} service is run as a container"
                )),
            );
        }
        if !r.finish(self.errors) {
            return false;
        }
        let Some(engine) = engine else {
            return false;
        };
        let sql = if engine.is_sql() {
            let (Some((address, port)), Some((admin_user, admin_password))) = (endpoint, admin)
            else {
                return false;
            };
            let port = port.unwrap_or(match engine {
                Engine::Postgres => 5432,
                _ => 3306,
            }) as u16;
            if !admin_password.is_empty() {
                self.out.secrets.push(admin_password.clone());
            }
            Some(SqlEndpoint {
                address,
                port,
                admin_user,
                admin_password: terrace_provider::Secret::new(admin_password),
            })
        } else {
            None
        };
        let container = match containers.first() {
            Some(c) => {
                let address = format!("service.{name}.container");
                let spec = docker::ContainerCtx {
                    owner: Node::Service(name.to_string()),
                    address: address.clone(),
                    default_name: name.to_string(),
                    ctx: self.ctx(),
                    each_sensitive: false,
                    default_host: host.clone(),
                    targets: block_targets(&c.attrs),
                    deps: Vec::new(),
                    app: false,
                };
                match self.container_body(c, spec) {
                    Some(container_name) => Some((Address::new(address), container_name)),
                    None => return false,
                }
            }
            None => None,
        };
        let value = obj(vec![
            ("name", Value::from(name)),
            ("engine", Value::from(engine.as_str())),
            (
                "endpoint",
                match &sql {
                    Some(s) => obj(vec![
                        ("address", Value::from(s.address.as_str())),
                        ("port", Value::from(s.port)),
                    ]),
                    None => Value::Null,
                },
            ),
            ("host", host.clone().map_or(Value::Null, Value::from)),
            (
                "container",
                match &container {
                    Some((_, n)) => obj(vec![("name", Value::from(n.as_str()))]),
                    None => Value::Null,
                },
            ),
        ]);
        self.ns
            .get_mut("service")
            .expect("namespace")
            .insert(name.to_string(), value);
        self.out.services.insert(
            name.to_string(),
            ServiceSpec {
                name: name.to_string(),
                engine,
                sql,
                container: container.map(|c| c.0),
                host,
            },
        );
        true
    }

    /// Reads `host = host.NAME`; errors go to `r`.
    fn host_attr(&self, r: &mut Reader, block: &RawBlock) -> Option<String> {
        let attr = block.attr("host")?;
        let v = r.value(attr)?;
        let host_name = v
            .as_object()
            .and_then(|o| o.get("name"))
            .and_then(Value::as_str)
            .map(str::to_string);
        match host_name.filter(|h| self.out.hosts.contains_key(h)) {
            Some(h) => Some(h),
            None => {
                r.errors.push(wrong_type(
                    attr,
                    &attr.loc,
                    "host",
                    "a reference to a host block",
                    &v,
                    "host.db1",
                ));
                None
            }
        }
    }

    /// Evaluates `for_each`: `None` on error, `Some(None)` without for_each, else the
    /// instances as (key, each object) and whether for_each is sensitive.
    #[allow(clippy::type_complexity)]
    fn instances(&mut self, block: &RawBlock) -> Option<(Option<Vec<(String, Value)>>, bool)> {
        let Some(attr) = block.attr("for_each") else {
            return Some((None, false));
        };
        let sensitive = self.is_sensitive(attr, false);
        let v = match evaluate(&attr.expr, &attr.loc, &self.ctx()) {
            Ok(v) => v,
            Err(e) => {
                self.errors.push(e);
                return None;
            }
        };
        let each = |k: &str, v: Value| obj(vec![("key", Value::from(k)), ("value", v)]);
        let out = match v {
            Value::Object(map) => map
                .into_iter()
                .map(|(k, v)| (k.clone(), each(&k, v)))
                .collect(),
            Value::Array(items) => {
                let mut out: Vec<(String, Value)> = Vec::new();
                for (i, item) in items.into_iter().enumerate() {
                    let Value::String(s) = item else {
                        self.errors.push(
                            ConfigError::new(
                                ErrorKind::WrongType,
                                format!("wrong type for \"for_each\": element {i} is {}, expected a string", describe(&item)),
                            )
                            .at(&attr.loc, "not a set of strings")
                            .help("for_each takes a map, or a set or list of strings"),
                        );
                        return None;
                    };
                    if !out.iter().any(|(k, _)| *k == s) {
                        out.push((s.clone(), each(&s, Value::from(s.as_str()))));
                    }
                }
                out
            }
            other => {
                self.errors.push(wrong_type(
                    attr,
                    &attr.loc,
                    "for_each",
                    "a map or a set of strings",
                    &other,
                    "var.apps",
                ));
                return None;
            }
        };
        Some((Some(out), sensitive))
    }

    fn tenant(&mut self, label: &str) -> bool {
        let decls = self.decls;
        let block = &decls.tenants[label];
        let Some((instances, each_sensitive)) = self.instances(block) else {
            return false;
        };
        let node = Node::Tenant(label.to_string());
        let for_each_targets = block_targets(&block.attrs);
        let app = block.blocks.iter().find(|b| b.kind == "app");
        let mut ok = true;
        let keyed = instances.is_some();
        let list: Vec<(Option<String>, Option<Value>)> = match instances {
            Some(v) => v.into_iter().map(|(k, e)| (Some(k), Some(e))).collect(),
            None => vec![(None, None)],
        };
        let mut values = Map::new();
        for (key, each) in list {
            let mut ctx = self.ctx();
            if let Some(each) = each {
                ctx.declare_var("each", each);
            }
            let instance = match &key {
                Some(k) => format!("tenant.{label}[{}]", quote(k)),
                None => format!("tenant.{label}"),
            };
            let mut instance_ok = true;

            // Databases first: the app refers to them through `self.database`.
            let prefix = format!("{instance}.database");
            let mut dbs = Map::new();
            let mut db_addresses = Vec::new();
            let mut sensitive_paths = Vec::new();
            for db in block.blocks.iter().filter(|b| b.kind == "database") {
                let (base, db_label) = match db.labels.first() {
                    Some((l, _)) => (format!("{prefix}[{}]", quote(l)), Some(l.clone())),
                    None => (prefix.clone(), None),
                };
                let mut targets = for_each_targets.clone();
                targets.extend(block_targets(&db.attrs));
                let v = self.database_body(
                    &node,
                    db,
                    base.clone(),
                    ctx.clone(),
                    each_sensitive,
                    targets,
                );
                let Some(v) = v else {
                    instance_ok = false;
                    continue;
                };
                for suffix in ["", ".user", ".grant"] {
                    db_addresses.push(Address::new(format!("{base}{suffix}")));
                }
                let item = self.out.databases.last().expect("just evaluated");
                let mut fields: Vec<&str> = item.inst.sensitive.iter().copied().collect();
                if !item.inst.user_set && item.inst.sensitive.contains("name") {
                    fields.push("user");
                }
                fields.push("password");
                for f in fields {
                    let mut path = vec!["database".to_string()];
                    path.extend(db_label.clone());
                    path.push(f.to_string());
                    sensitive_paths.push(path);
                }
                match (db_label, v) {
                    (Some(l), v) => {
                        dbs.insert(l, v);
                    }
                    (None, Value::Object(fields)) => dbs.extend(fields),
                    (None, _) => {}
                }
            }

            // Volumes default to the engine the app runs on.
            let app_host = app.and_then(|a| {
                // Errors are reported when the app block itself is evaluated.
                let mut r = Reader::new(ctx.clone());
                self.host_attr(&mut r, a)
            });
            let mut volumes = Map::new();
            let mut volume_addresses = Vec::new();
            for v in block.blocks.iter().filter(|b| b.kind == "volume") {
                let l = v.label();
                let address = format!("{instance}.volume[{}]", quote(l));
                let default_name = match &key {
                    Some(k) => format!("{label}_{k}_{l}"),
                    None => format!("{label}_{l}"),
                };
                let mut targets = for_each_targets.clone();
                targets.extend(block_targets(&v.attrs));
                let inst = docker::Instance {
                    owner: node.clone(),
                    address: address.clone(),
                    default_name,
                    ctx: ctx.clone(),
                    each_sensitive,
                    default_host: app_host.clone(),
                    targets,
                };
                match self.volume_body(v, inst) {
                    Some(value) => {
                        volumes.insert(l.to_string(), value);
                        volume_addresses.push(Address::new(address));
                    }
                    None => instance_ok = false,
                }
            }

            let mut app_value = Value::Null;
            match app {
                Some(a) if instance_ok => {
                    let mut actx = ctx.clone();
                    actx.declare_var(
                        "self",
                        obj(vec![
                            ("database", Value::Object(dbs.clone())),
                            ("volume", Value::Object(volumes.clone())),
                        ]),
                    );
                    // The app is created after what it reads through `self`.
                    let mut deps = Vec::new();
                    for r in a.attrs.iter().flat_map(|x| crate::refs::collect(&x.expr).0) {
                        match &r.target {
                            Target::SelfRef(s) if s == "database" => {
                                deps.extend(db_addresses.iter().cloned())
                            }
                            Target::SelfRef(_) => deps.extend(volume_addresses.iter().cloned()),
                            _ => {}
                        }
                    }
                    let mut targets = for_each_targets.clone();
                    targets.extend(block_targets(&a.attrs));
                    let spec = docker::ContainerCtx {
                        owner: node.clone(),
                        address: format!("{instance}.app"),
                        default_name: match &key {
                            Some(k) => format!("{label}-{k}"),
                            None => label.to_string(),
                        },
                        ctx: actx,
                        each_sensitive,
                        default_host: None,
                        targets,
                        deps,
                        app: true,
                    };
                    self.self_sensitive = sensitive_paths;
                    let name = self.container_body(a, spec);
                    self.self_sensitive.clear();
                    match name {
                        Some(n) => app_value = obj(vec![("name", Value::from(n))]),
                        None => instance_ok = false,
                    }
                }
                _ => {}
            }
            ok &= instance_ok;
            let value = obj(vec![
                ("name", Value::from(label)),
                ("key", key.clone().map_or(Value::Null, Value::from)),
                ("database", Value::Object(dbs)),
                ("volume", Value::Object(volumes)),
                ("app", app_value),
            ]);
            values.insert(key.unwrap_or_default(), value);
        }
        let value = if keyed {
            Value::Object(values)
        } else {
            values.swap_remove("").unwrap_or(Value::Null)
        };
        self.ns
            .get_mut("tenant")
            .expect("namespace")
            .insert(label.to_string(), value);
        ok
    }

    fn top_database(&mut self, label: &str) -> bool {
        let decls = self.decls;
        let block = &decls.databases[label];
        let Some((instances, each_sensitive)) = self.instances(block) else {
            return false;
        };
        let node = Node::Database(label.to_string());
        let targets = block_targets(&block.attrs);
        let mut ok = true;
        let value = match instances {
            None => {
                let v = self.database_body(
                    &node,
                    block,
                    format!("database.{label}"),
                    self.ctx(),
                    false,
                    targets,
                );
                ok = v.is_some();
                v.unwrap_or(Value::Null)
            }
            Some(list) => {
                let mut values = Map::new();
                for (key, each) in list {
                    let mut ctx = self.ctx();
                    ctx.declare_var("each", each);
                    let base = format!("database.{label}[{}]", quote(&key));
                    match self.database_body(
                        &node,
                        block,
                        base,
                        ctx,
                        each_sensitive,
                        targets.clone(),
                    ) {
                        Some(v) => {
                            values.insert(key, v);
                        }
                        None => ok = false,
                    }
                }
                Value::Object(values)
            }
        };
        self.ns
            .get_mut("database")
            .expect("namespace")
            .insert(label.to_string(), value);
        ok
    }

    /// Evaluates one database block instance; returns its value for references. The
    /// password is the configured one, or a marker for the one generated during apply.
    fn database_body(
        &mut self,
        owner: &Node,
        block: &RawBlock,
        base: String,
        ctx: Context<'static>,
        each_sensitive: bool,
        targets: Vec<Target>,
    ) -> Option<Value> {
        let mut r = Reader::new(ctx);
        let service = block.attr("service").and_then(|attr| {
            let v = r.value(attr)?;
            let name = v
                .as_object()
                .and_then(|o| o.get("name"))
                .and_then(Value::as_str)
                .map(str::to_string);
            match name.and_then(|n| self.out.services.get(&n)) {
                Some(s) if s.engine.is_sql() => Some((s.name.clone(), s.engine)),
                Some(s) => {
                    r.errors.push(
                        ConfigError::new(
                            ErrorKind::InvalidValue,
                            format!(
                                "service \"{}\" has engine \"{}\", which has no databases",
                                s.name, s.engine
                            ),
                        )
                        .at(&attr.loc, "not a SQL service")
                        .help("a database block needs a service with engine \"postgres\", \"mysql\" or \"mariadb\""),
                    );
                    None
                }
                None => {
                    r.errors.push(wrong_type(
                        attr,
                        &attr.loc,
                        "service",
                        "a reference to a service block",
                        &v,
                        "service.pg",
                    ));
                    None
                }
            }
        });
        let name = r.string(block, "name", "\"wp_app\"");
        let user = r.string(block, "user", "\"wp_app\"");
        let engine = service.as_ref().map(|s| s.1);
        let limit_range = match engine {
            Some(Engine::Postgres) => (-1, i64::from(i32::MAX)),
            _ => (0, i64::from(u32::MAX)),
        };
        let connection_limit = block
            .attr("connection_limit")
            .and_then(|_| r.int(block, "connection_limit", limit_range, "10"));
        let password = r.string(block, "password", "var.app_password");
        let privileges = block.attr("privileges").and_then(|attr| {
            let v = r.value(attr)?;
            let Value::Array(items) = &v else {
                r.errors.push(wrong_type(attr, &attr.loc, "privileges", "a list of strings", &v, "[\"ALL\"]"));
                return None;
            };
            let mut out = Vec::new();
            for item in items {
                let Value::String(p) = item else {
                    r.errors.push(wrong_type(attr, &attr.loc, "privileges", "a list of strings", &v, "[\"ALL\"]"));
                    return None;
                };
                match validate::privilege(p) {
                    Ok(p) => out.push(p),
                    Err(msg) => {
                        r.errors.push(
                            ConfigError::new(ErrorKind::InvalidIdentifier, msg)
                                .at(&attr.loc, "not a privilege keyword")
                                .help("privileges are SQL keywords made of letters and single spaces, e.g. \"ALL\", \"SELECT\", \"ALL PRIVILEGES\""),
                        );
                        return None;
                    }
                }
            }
            Some(out)
        });
        let mut charsets = Vec::new();
        for key in ["charset", "collation"] {
            let Some(attr) = block.attr(key) else {
                charsets.push(None);
                continue;
            };
            if engine == Some(Engine::Postgres) {
                r.errors.push(
                    ConfigError::new(ErrorKind::Unsupported, format!("\"{key}\" is not supported on postgres"))
                        .at(&attr.key_loc, "MySQL/MariaDB only")
                        .help(format!("remove \"{key}\": PostgreSQL databases use the server's encoding and locale")),
                );
                charsets.push(None);
                continue;
            }
            let v = r.string(block, key, "\"utf8mb4\"");
            if let Some((s, loc)) = &v {
                if !validate::charset_name(s) {
                    r.errors.push(
                        ConfigError::new(ErrorKind::InvalidIdentifier, format!("invalid {key} \"{s}\""))
                            .at(loc, format!("not a {key} name"))
                            .help(format!("a {key} name has only ASCII letters, digits and underscores, e.g. utf8mb4")),
                    );
                }
            }
            charsets.push(v.map(|x| x.0));
        }
        // SQL names, checked with the span of the expression that produced them.
        if let (Some((_, engine)), Some((n, loc))) = (&service, &name) {
            check_sql_name(
                &mut r.errors,
                n,
                loc,
                *engine,
                SqlName::Database,
                "database name",
            );
            match &user {
                Some((u, uloc)) => {
                    check_sql_name(&mut r.errors, u, uloc, *engine, SqlName::User, "user name")
                }
                None => {
                    if validate::sql_name(n, *engine, SqlName::Database).is_ok() {
                        check_sql_name(
                            &mut r.errors,
                            n,
                            loc,
                            *engine,
                            SqlName::User,
                            "user name (defaulted from name)",
                        );
                    }
                }
            }
        }
        let mut sensitive = BTreeSet::new();
        for key in [
            "name",
            "user",
            "connection_limit",
            "password",
            "privileges",
            "charset",
            "collation",
        ] {
            if let Some(attr) = block.attr(key) {
                if self.is_sensitive(attr, each_sensitive) {
                    sensitive.insert(key);
                }
            }
        }
        let ok = r.finish(self.errors);
        let (Some((service, engine)), Some((name, name_loc))) = (service, name) else {
            return None;
        };
        if !ok {
            return None;
        }
        if let Some((p, _)) = &password {
            if !p.is_empty() {
                self.out.secrets.push(p.clone());
            }
        }
        let password_value = match &password {
            Some((p, _)) => Value::from(p.as_str()),
            None => Value::from(terrace_provider::refs::marker(
                &Address::new(format!("{base}.user")),
                "password",
            )),
        };
        let inst = DbInstance {
            base,
            service: service.clone(),
            engine,
            user_set: user.is_some(),
            user: user.as_ref().map_or_else(|| name.clone(), |u| u.0.clone()),
            name: name.clone(),
            connection_limit,
            password: password.map(|p| p.0),
            privileges: privileges.unwrap_or_else(|| vec!["ALL".to_string()]),
            charset: charsets[0].clone(),
            collation: charsets[1].clone(),
            sensitive,
        };
        let value = obj(vec![
            ("service", Value::from(service.as_str())),
            ("name", Value::from(inst.name.as_str())),
            ("user", Value::from(inst.user.as_str())),
            (
                "connection_limit",
                inst.connection_limit.map_or(Value::Null, Value::from),
            ),
            (
                "privileges",
                Value::Array(
                    inst.privileges
                        .iter()
                        .map(|p| Value::from(p.as_str()))
                        .collect(),
                ),
            ),
            (
                "charset",
                match engine {
                    Engine::Postgres => Value::Null,
                    _ => Value::from(inst.charset.as_deref().unwrap_or("utf8mb4")),
                },
            ),
            (
                "collation",
                inst.collation.clone().map_or(Value::Null, Value::from),
            ),
            ("password", password_value),
        ]);
        self.out.databases.push(DbItem {
            node: owner.clone(),
            inst,
            head: block.head_loc.clone(),
            name_loc,
            targets,
        });
        Some(value)
    }
}

fn check_sql_name(
    errors: &mut Vec<ConfigError>,
    name: &str,
    loc: &Loc,
    engine: Engine,
    what: SqlName,
    desc: &str,
) {
    if let Err(msg) = validate::sql_name(name, engine, what) {
        errors.push(
            ConfigError::new(
                ErrorKind::InvalidIdentifier,
                format!("invalid {desc} \"{}\": {msg}", name.escape_debug()),
            )
            .at(loc, "this value is not a valid SQL name")
            .help(validate::sql_name_help(engine, what)),
        );
    }
}

/// Quotes an instance key like a JSON string, as addresses show it.
pub(crate) fn quote(key: &str) -> String {
    serde_json::to_string(key).expect("strings always serialize")
}
