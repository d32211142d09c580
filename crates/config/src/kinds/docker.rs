//! Code shared by the Docker kinds (`image`, `network`, `volume`), and the containers
//! of service `container` blocks and tenant `app` blocks, evaluated straight into
//! `docker_*` resources.
//!
//! Only attributes the user set (plus derived routing labels) go into a resource, so
//! that the planner compares nothing else. Lists are normalised here (`networks` items
//! become `{ name, aliases }`, `mounts` items `{ source, target, read_only }`); values
//! such as `memory = "256m"` pass through unchanged for the provider to normalise.

use std::collections::BTreeSet;

use serde_json::Value as Json;
use terrace_provider::{Attrs, DesiredResource, ResourceSchema};

use super::decode::Decoded;

use super::*;
use crate::model::docker_key;

/// One instance of an image, network or volume block.
pub(super) struct Instance {
    /// The top-level block that owns it.
    pub owner: Node,
    /// Resource address.
    pub address: String,
    /// The Docker name when `name` is not set.
    pub default_name: String,
    /// Context with `each` declared where it applies.
    pub ctx: Context<'static>,
    pub each_sensitive: bool,
    /// The host when `host` is not set.
    pub default_host: Option<String>,
    /// References of the block (cross-block dependencies).
    pub targets: Targets,
}

/// One container: a service's `container` block or a tenant instance's `app`.
pub(super) struct ContainerCtx {
    pub owner: Node,
    pub address: String,
    pub default_name: String,
    /// Context with `each` and `self` declared where they apply.
    pub ctx: Context<'static>,
    pub each_sensitive: bool,
    pub default_host: Option<String>,
    pub targets: Targets,
    /// Dependencies known at evaluation (what the app reads through `self`).
    pub deps: Vec<Address>,
    /// A tenant's app (`domain` and `port` allowed).
    pub app: bool,
}

/// The value of a Docker object under its namespace: every attribute a block can set
/// (null when unset), then `host`.
pub(super) fn object_value(schema: &ResourceSchema, attrs: &Attrs, host: Option<&str>) -> Value {
    let mut fields: Vec<(&str, Value)> = schema
        .attrs
        .iter()
        .filter(|a| a.presence != terrace_provider::Presence::Output)
        .map(|a| {
            let v = attrs.get(a.name).map_or(Value::Null, |v| {
                hcl::to_value(v).expect("JSON values are HCL values")
            });
            (a.name, v)
        })
        .collect();
    fields.push(("host", host.map_or(Value::Null, Value::from)));
    obj(fields)
}

/// Which block owns a Docker resource, its address, and what it depends on.
pub(super) struct Placement {
    owner: Node,
    address: String,
    /// References of the block (cross-block dependencies).
    targets: Targets,
    /// Dependencies known at evaluation.
    depends_on: Vec<Address>,
}

/// What a Docker block body evaluated to.
pub(super) struct DockerBody {
    /// The host whose engine runs it (`None`: the local engine).
    pub(super) host: Option<String>,
    pub(super) attrs: Attrs,
    /// Resource attributes whose value came from something sensitive.
    pub(super) sensitive: BTreeSet<String>,
    /// The Docker name and where it is written.
    pub(super) name: (String, Loc),
}

impl<'a> State<'a> {
    /// Evaluates every instance of a top-level image, network or volume block and
    /// declares its value under the kind's namespace.
    pub(super) fn top_level(
        &mut self,
        label: &str,
        kind: Kind,
        body: fn(&mut State<'a>, &RawBlock, Instance) -> Option<Value>,
    ) -> bool {
        let decls = self.decls;
        let block = &decls.of(kind)[label];
        let owner = Node::Block(kind, label.to_string());
        let ns = kind.keyword();
        let Some((instances, each_sensitive)) = self.instances(block) else {
            return false;
        };
        let targets = block_targets(&block.attrs);
        let instance = |key: Option<&str>, ctx: Context<'static>| Instance {
            owner: owner.clone(),
            address: match key {
                Some(k) => format!("{ns}.{label}[{}]", quote(k)),
                None => format!("{ns}.{label}"),
            },
            default_name: match key {
                Some(k) => format!("{label}_{k}"),
                None => label.to_string(),
            },
            ctx,
            each_sensitive,
            default_host: None,
            targets: targets.clone(),
        };
        let mut ok = true;
        let value = match instances {
            None => {
                let v = body(self, block, instance(None, self.ctx()));
                ok = v.is_some();
                v.unwrap_or(Value::Null)
            }
            Some(list) => {
                let mut values = Map::new();
                for (key, each) in list {
                    let ctx = self.instance_ctx(each);
                    match body(self, block, instance(Some(&key), ctx)) {
                        Some(v) => {
                            values.insert(key, v);
                        }
                        None => ok = false,
                    }
                }
                Value::Object(values)
            }
        };
        self.ns.declare(kind, label, value);
        ok
    }

    /// A network or volume (any Docker object that is a name plus schema attributes):
    /// `name` defaults to the instance's default name.
    pub(super) fn docker_object(
        &mut self,
        kind: Kind,
        block: &RawBlock,
        inst: Instance,
        example: &str,
    ) -> Option<Value> {
        let mut r = Reader::new(inst.ctx.clone());
        let schema = self.resource_schema(kind);
        let Decoded {
            mut attrs,
            mut sensitive,
        } = self.decode(
            &mut r,
            block,
            schema,
            &["name"],
            &inst.address,
            inst.each_sensitive,
        );
        let name = self.docker_name(&mut r, block, kind.keyword(), &inst.default_name, example);
        let host = self.host_attr(&mut r, block).or(inst.default_host.clone());
        if !r.finish(self.errors) {
            return None;
        }
        let (name, name_loc) = name?;
        attrs.insert("name".into(), Json::from(name.as_str()));
        sensitive.extend(self.sensitive_keys(block, &[("name", &["name"])], inst.each_sensitive));
        let value = object_value(schema, &attrs, host.as_deref());
        let body = DockerBody {
            host,
            attrs,
            sensitive,
            name: (name, name_loc),
        };
        self.push_shared(kind, inst, body, value)
    }

    /// The resource attributes whose block attribute is sensitive.
    pub(super) fn sensitive_keys(
        &self,
        block: &RawBlock,
        pairs: &[(&str, &[&str])],
        each_sensitive: bool,
    ) -> BTreeSet<String> {
        pairs
            .iter()
            .filter(|(_, from)| {
                from.iter()
                    .filter_map(|k| block.attr(k))
                    .any(|a| self.is_sensitive(a, each_sensitive))
            })
            .map(|(k, _)| k.to_string())
            .collect()
    }

    /// `name`, or the default; checked as a Docker name.
    pub(super) fn docker_name(
        &self,
        r: &mut Reader,
        block: &RawBlock,
        what: &str,
        default: &str,
        example: &str,
    ) -> Option<(String, Loc)> {
        let rule = NameRule {
            default,
            default_loc: &block.head_loc,
            example,
            what,
            kind: "Docker",
            help: validate::DOCKER_NAME_HELP,
        };
        r.name_or_default(block, &rule, |n| {
            validate::docker_name(n).map_err(|detail| (detail, None))
        })
    }

    /// Adds the sensitivity of map attribute `name` to `out`. Written as an object with
    /// literal keys (`env = { DB_PASSWORD = self.database.password, DB_HOST = "db" }`),
    /// it is secret key by key, so a plan shows `DB_HOST` beside the hidden password;
    /// written any other way (`var.env`, `merge(...)`, a computed key) it is secret as a
    /// whole, because which keys hold what is only known from the whole value.
    pub(super) fn map_sensitivity(
        &self,
        block: &RawBlock,
        name: &str,
        each_sensitive: bool,
        out: &mut BTreeSet<String>,
    ) {
        use hcl::edit::expr::{Expression, ObjectKey};
        let Some(attr) = block.attr(name) else {
            return;
        };
        if !self.is_sensitive(attr, each_sensitive) {
            return;
        }
        let mut keys = Vec::new();
        if let Expression::Object(object) = &attr.expr {
            for (k, v) in object.iter() {
                let key = match k {
                    ObjectKey::Ident(i) => i.as_str().to_string(),
                    ObjectKey::Expression(Expression::String(s)) => s.value().to_string(),
                    ObjectKey::Expression(_) => {
                        terrace_provider::mark_sensitive(out, name);
                        return;
                    }
                };
                let (refs, _) = crate::refs::collect(v.expr());
                if self.refs_sensitive(&refs, each_sensitive) {
                    keys.push(key);
                }
            }
        }
        if keys.is_empty() {
            terrace_provider::mark_sensitive(out, name);
        }
        for k in keys {
            terrace_provider::mark_key_sensitive(out, name, &k);
        }
    }

    /// Records one evaluated Docker resource of `type_name`, owned and placed as
    /// `at` says.
    pub(super) fn push_docker(&mut self, at: Placement, type_name: &str, body: DockerBody) {
        let DockerBody {
            host,
            attrs,
            sensitive,
            name: (name, name_loc),
        } = body;
        self.out.docker.push(DockerItem {
            node: at.owner,
            resource: DesiredResource {
                address: Address::new(at.address),
                type_name: type_name.to_string(),
                provider: docker_key(host.as_deref()),
                attrs,
                sensitive_attrs: sensitive,
                depends_on: at.depends_on,
                lifecycle: Default::default(),
            },
            name,
            name_loc,
            targets: at.targets,
        });
    }

    /// Records an image, network or volume: its referenceable `value` (matched by
    /// name when containers refer to it) and its resource.
    pub(super) fn push_shared(
        &mut self,
        kind: Kind,
        inst: Instance,
        body: DockerBody,
        value: Value,
    ) -> Option<Value> {
        self.docker_values
            .entry(kind)
            .or_default()
            .entry(Hashed(value.clone()))
            .or_insert_with(|| body.name.0.clone());
        let at = Placement {
            owner: inst.owner,
            address: inst.address,
            targets: inst.targets,
            depends_on: Vec::new(),
        };
        let type_name = self.resource_schema(kind).type_name;
        self.push_docker(at, type_name, body);
        Some(value)
    }

    /// The Docker name of an evaluated image, network or volume equal to `v`.
    pub(super) fn referenced(&self, kind: Kind, v: &Value) -> Option<String> {
        self.docker_values
            .get(&kind)?
            .get(&Hashed(v.clone()))
            .cloned()
    }

    /// Evaluates a container; returns its Docker name.
    pub(super) fn container_body(&mut self, block: &RawBlock, c: ContainerCtx) -> Option<String> {
        let mut r = Reader::new(c.ctx.clone());
        let mut attrs = Attrs::new();

        let image = block.attr("image").and_then(|attr| {
            let v = r.value(attr)?;
            let name = match &v {
                Value::String(s) => Some(s.clone()),
                Value::Object(_) => self.referenced(Kind::Image, &v),
                _ => None,
            };
            let Some(name) = name else {
                r.errors.push(wrong_type(
                    attr,
                    &attr.loc,
                    "image",
                    "an image reference or an image name",
                    &v,
                    "image.web",
                ));
                return None;
            };
            if let Err(msg) = validate::image_name(&name) {
                r.errors.push(
                    ConfigError::new(
                        ErrorKind::InvalidValue,
                        format!("invalid image name \"{}\": {msg}", name.escape_debug()),
                    )
                    .at(&attr.loc, "not an image reference")
                    .help("refer to an image block (image.web) or write a reference like \"nginx:1.27\""),
                );
                return None;
            }
            Some(name)
        });
        let what = if c.app { "app container" } else { "container" };
        let name = self.docker_name(&mut r, block, what, &c.default_name, "\"web\"");

        if let Some(a) = block.attr("command") {
            if let Some(list) = r.string_list(a, "[\"httpd\", \"-f\"]") {
                attrs.insert("command".into(), Json::from(list));
            }
        }
        if let Some(a) = block.attr("env") {
            if let Some(map) = r.string_map(a, "{ DB_HOST = \"db\" }") {
                attrs.insert("env".into(), Json::Object(map));
            }
        }
        let mut labels = block
            .attr("labels")
            .and_then(|a| r.string_map(a, "{ \"com.example.team\" = \"web\" }"));
        if let Some(a) = block.attr("ports") {
            if let Some(list) = r.string_list(a, "[\"127.0.0.1:8080:80\"]") {
                attrs.insert("ports".into(), Json::from(list));
            }
        }
        if let Some(a) = block.attr("mounts") {
            if let Some(list) = self.mounts(&mut r, a) {
                attrs.insert("mounts".into(), Json::Array(list));
            }
        }
        if let Some(a) = block.attr("networks") {
            if let Some(list) = self.networks(&mut r, a) {
                attrs.insert("networks".into(), Json::Array(list));
            }
        }
        if let Some(a) = block.attr("memory") {
            if let Some(v) = r.value(a) {
                match v {
                    Value::String(_) | Value::Number(_) => {
                        attrs.insert("memory".into(), json(&v));
                    }
                    other => r.errors.push(wrong_type(
                        a,
                        &a.loc,
                        "memory",
                        "a size like \"256m\" or a number of bytes",
                        &other,
                        "\"256m\"",
                    )),
                }
            }
        }
        if let Some((p, loc)) = r.string(block, "restart", "\"unless-stopped\"") {
            if validate::restart_policy(&p) {
                attrs.insert("restart".into(), Json::from(p));
            } else {
                r.errors.push(
                    ConfigError::new(
                        ErrorKind::InvalidValue,
                        format!("invalid restart policy \"{}\"", p.escape_debug()),
                    )
                    .at(&loc, "not a restart policy")
                    .help(suggest(
                        &p,
                        validate::RESTART_POLICIES.iter().copied(),
                        |all| {
                            format!(
                                "restart must be {}, or \"on-failure:N\" with a number of retries",
                                list_names(&all)
                            )
                        },
                    )),
                );
            }
        }
        if let Some(a) = block.attr("healthcheck") {
            if let Some(h) = self.healthcheck(&mut r, a) {
                attrs.insert("healthcheck".into(), Json::Object(h));
            }
        }
        if let Some(b) = r.bool(block, "running") {
            attrs.insert("running".into(), Json::Bool(b));
        }
        if let Some(b) = r.bool(block, "init") {
            attrs.insert("init".into(), Json::Bool(b));
        }
        // Spelling and range are the provider's checks (its normalize), like the
        // healthcheck's durations.
        if let Some((s, _)) = r.string_or_number(block, "stop_signal", "\"SIGINT\"") {
            attrs.insert("stop_signal".into(), Json::from(s));
        }
        // A bare number is whole seconds, as Docker's `--stop-timeout 5` takes it.
        if let Some((s, _)) = r.string_or_number(block, "stop_timeout", "\"5s\"") {
            let s = if s.bytes().all(|b| b.is_ascii_digit()) {
                format!("{s}s")
            } else {
                s
            };
            attrs.insert("stop_timeout".into(), Json::from(s));
        }
        let host = self.host_attr(&mut r, block).or(c.default_host.clone());
        let domain = if c.app {
            r.string(block, "domain", "\"alice.example.com\"")
        } else {
            None
        };
        let port = if c.app {
            block
                .attr("port")
                .and_then(|_| r.int(block, "port", (1, 65535), "8080"))
        } else {
            None
        };
        if let (None, Some(a)) = (&domain, block.attr("port").filter(|_| c.app)) {
            r.errors.push(
                ConfigError::new(
                    ErrorKind::InvalidValue,
                    "\"port\" is only used with \"domain\"",
                )
                .at(&a.key_loc, "no domain to route to this port")
                .help("set `domain = \"...\"` to route a domain to the app's port, or remove \"port\""),
            );
        }
        if !r.finish(self.errors) {
            return None;
        }
        let (image, (name, name_loc)) = (image?, name?);
        attrs.insert("image".into(), Json::from(image));
        attrs.insert("name".into(), Json::from(name.as_str()));
        if let Some((domain, _)) = &domain {
            // Reverse-proxy routing (Traefik's label convention); labels set by the
            // user win.
            let labels = labels.get_or_insert_with(serde_json::Map::new);
            let derived = [
                ("traefik.enable".to_string(), "true".to_string()),
                (
                    format!("traefik.http.routers.{name}.rule"),
                    format!("Host(`{domain}`)"),
                ),
                (
                    format!("traefik.http.services.{name}.loadbalancer.server.port"),
                    port.unwrap_or(80).to_string(),
                ),
            ];
            for (k, v) in derived {
                labels.entry(k).or_insert(Json::String(v));
            }
        }
        if let Some(l) = labels {
            attrs.insert("labels".into(), Json::Object(l));
        }
        let pairs: Vec<(&str, &[&str])> = vec![
            ("image", &["image"]),
            ("name", &["name"]),
            ("command", &["command"]),
            ("labels", &["labels", "domain", "port"]),
            ("ports", &["ports"]),
            ("mounts", &["mounts"]),
            ("networks", &["networks"]),
            ("memory", &["memory"]),
            ("restart", &["restart"]),
            ("healthcheck", &["healthcheck"]),
            ("running", &["running"]),
            ("init", &["init"]),
            ("stop_signal", &["stop_signal"]),
            ("stop_timeout", &["stop_timeout"]),
        ];
        let mut sensitive = self.sensitive_keys(block, &pairs, c.each_sensitive);
        self.map_sensitivity(block, "env", c.each_sensitive, &mut sensitive);
        let at = Placement {
            owner: c.owner,
            address: c.address,
            targets: c.targets,
            depends_on: c.deps,
        };
        let body = DockerBody {
            host,
            attrs,
            sensitive,
            name: (name.clone(), name_loc),
        };
        self.push_docker(at, "docker_container", body);
        Some(name)
    }

    /// `mounts`: a list of `{ source, target, read_only }`; `source` is a volume name,
    /// a volume reference or a host path.
    fn mounts(&self, r: &mut Reader, attr: &RawAttr) -> Option<Vec<Json>> {
        let example = "[{ source = volume.data.name, target = \"/data\" }]";
        let v = r.value(attr)?;
        let Value::Array(items) = &v else {
            r.errors.push(wrong_type(
                attr,
                &attr.loc,
                "mounts",
                "a list of objects",
                &v,
                example,
            ));
            return None;
        };
        let mut out = Vec::new();
        let mut ok = true;
        for (i, item) in items.iter().enumerate() {
            let at = item_loc(attr, i);
            let field = format!("mounts[{i}]");
            let Value::Object(map) = item else {
                r.errors.push(wrong_type(
                    attr,
                    &at,
                    &field,
                    "an object { source = ..., target = ... }",
                    item,
                    example,
                ));
                ok = false;
                continue;
            };
            if !check_keys(
                r,
                attr,
                i,
                map,
                Keys {
                    allowed: &["source", "target", "read_only"],
                    required: &["source", "target"],
                },
                &field,
                example,
            ) {
                ok = false;
                continue;
            }
            let source = match &map["source"] {
                Value::String(s) => Some(s.clone()),
                o @ Value::Object(_) => self.referenced(Kind::Volume, o),
                _ => None,
            };
            let Some(source) = source else {
                r.errors.push(wrong_type(
                    attr,
                    &item_field_loc(attr, i, "source"),
                    &format!("{field}.source"),
                    "a volume name, a volume reference or a host path",
                    &map["source"],
                    example,
                ));
                ok = false;
                continue;
            };
            let target = match &map["target"] {
                Value::String(t) if t.starts_with('/') => t.clone(),
                Value::String(t) => {
                    r.errors.push(
                        ConfigError::new(
                            ErrorKind::InvalidValue,
                            format!("invalid mount target \"{}\": not an absolute path", t.escape_debug()),
                        )
                        .at(&item_field_loc(attr, i, "target"), "not an absolute path")
                        .help("a mount target is a path inside the container, e.g. \"/var/lib/mysql\""),
                    );
                    ok = false;
                    continue;
                }
                other => {
                    r.errors.push(wrong_type(
                        attr,
                        &item_field_loc(attr, i, "target"),
                        &format!("{field}.target"),
                        "a string",
                        other,
                        example,
                    ));
                    ok = false;
                    continue;
                }
            };
            let read_only = match map.get("read_only") {
                None => false,
                Some(Value::Bool(b)) => *b,
                Some(other) => {
                    r.errors.push(wrong_type(
                        attr,
                        &item_field_loc(attr, i, "read_only"),
                        &format!("{field}.read_only"),
                        "a bool",
                        other,
                        example,
                    ));
                    ok = false;
                    continue;
                }
            };
            out.push(serde_json::json!({
                "source": source,
                "target": target,
                "read_only": read_only,
            }));
        }
        ok.then_some(out)
    }

    /// `networks`: items are network references, names, or `{ name, aliases }`; all
    /// become `{ name, aliases }`.
    fn networks(&self, r: &mut Reader, attr: &RawAttr) -> Option<Vec<Json>> {
        let example = "[network.farm]";
        let v = r.value(attr)?;
        let Value::Array(items) = &v else {
            r.errors.push(wrong_type(
                attr, &attr.loc, "networks", "a list", &v, example,
            ));
            return None;
        };
        let mut out = Vec::new();
        let mut ok = true;
        for (i, item) in items.iter().enumerate() {
            let field = format!("networks[{i}]");
            let (name, aliases) = match item {
                Value::String(s) => (s.clone(), Vec::new()),
                Value::Object(map) => {
                    if let Some(n) = self.referenced(Kind::Network, item) {
                        (n, Vec::new())
                    } else {
                        if !check_keys(
                            r,
                            attr,
                            i,
                            map,
                            Keys {
                                allowed: &["name", "aliases"],
                                required: &["name"],
                            },
                            &field,
                            "[{ name = network.farm.name, aliases = [\"db\"] }]",
                        ) {
                            ok = false;
                            continue;
                        }
                        let Value::String(n) = &map["name"] else {
                            r.errors.push(wrong_type(
                                attr,
                                &item_field_loc(attr, i, "name"),
                                &format!("{field}.name"),
                                "a string",
                                &map["name"],
                                "[{ name = network.farm.name, aliases = [\"db\"] }]",
                            ));
                            ok = false;
                            continue;
                        };
                        let aliases = match map.get("aliases") {
                            None => Vec::new(),
                            Some(a) => {
                                match r.string_list_of(
                                    attr,
                                    &item_field_loc(attr, i, "aliases"),
                                    &format!("{field}.aliases"),
                                    a,
                                    "[{ name = network.farm.name, aliases = [\"db\"] }]",
                                    true,
                                ) {
                                    Some(l) => l,
                                    None => {
                                        ok = false;
                                        continue;
                                    }
                                }
                            }
                        };
                        (n.clone(), aliases)
                    }
                }
                other => {
                    r.errors.push(
                        ConfigError::new(
                            ErrorKind::WrongType,
                            format!(
                                "wrong type for \"{field}\": expected a network reference, a network name or {{ name = ..., aliases = [...] }}, found {}",
                                describe(other)
                            ),
                        )
                        .at(&item_loc(attr, i), format!("this is {}", describe(other)))
                        .help("write it like `networks = [network.farm]`, `networks = [\"farm\"]` or `networks = [{ name = network.farm.name, aliases = [\"db\"] }]`"),
                    );
                    ok = false;
                    continue;
                }
            };
            out.push(serde_json::json!({ "name": name, "aliases": aliases }));
        }
        ok.then_some(out)
    }

    /// `healthcheck = { test = [...], interval, timeout, retries, start_period }`.
    fn healthcheck(&self, r: &mut Reader, attr: &RawAttr) -> Option<serde_json::Map<String, Json>> {
        let example = "{ test = [\"CMD\", \"true\"], interval = \"10s\", retries = 3 }";
        let map = r.object(
            attr,
            &["test", "interval", "timeout", "retries", "start_period"],
            &["test"],
            example,
        )?;
        let mut out = serde_json::Map::new();
        let test = r.string_list_of(
            attr,
            &field_loc(attr, "test"),
            "test",
            &map["test"],
            example,
            true,
        )?;
        out.insert("test".into(), Json::from(test));
        for key in ["interval", "timeout", "start_period"] {
            if let Some(v) = map.get(key) {
                let s = r.string_of(attr, &field_loc(attr, key), key, v, example)?;
                out.insert(key.into(), Json::from(s));
            }
        }
        if let Some(v) = map.get("retries") {
            let n = r.int_of(
                attr,
                &field_loc(attr, "retries"),
                "retries",
                v,
                (0, 1_000_000),
                example,
            )?;
            out.insert("retries".into(), Json::from(n));
        }
        Some(out)
    }
}
