//! `database` blocks (top level and inside tenants): evaluation, and lowering of one
//! instance to the `sql_database`, `sql_user` and `sql_grant` resources.

use super::*;
use serde_json::Value as Json;
use terrace_provider::{Attrs, AttrsMap, DesiredResource, ProviderKey};

pub(super) fn eval(s: &mut State<'_>, label: &str) -> bool {
    s.top_database(label)
}

impl State<'_> {
    pub(super) fn top_database(&mut self, label: &str) -> bool {
        let decls = self.decls;
        let block = &decls.of(Kind::Database)[label];
        let Some((instances, each_sensitive)) = self.instances(block) else {
            return false;
        };
        let node = Node::Block(Kind::Database, label.to_string());
        let targets = block_targets(&block.attrs);
        let mut ok = true;
        let value = match instances {
            None => {
                let v = self.database_body(
                    &node,
                    block,
                    format!("database.{label}"),
                    std::borrow::Cow::Owned(self.ctx()),
                    false,
                    targets,
                );
                ok = v;
                match self.out.databases.last() {
                    Some(item) if ok && self.value_read => instance_value(&item.inst),
                    _ => Value::Null,
                }
            }
            Some(list) => {
                // One item per instance (see the tenant's reservation).
                self.out.databases.reserve(list.len());
                let mut values = Map::new();
                // One context for every instance, `each` replaced in it: building one
                // per instance cloned every value the block reads.
                let mut ctx = self.ctx();
                for (key, each) in list {
                    self.enter_instance(&mut ctx, each);
                    let base = format!("database.{label}[{}]", quote(&key));
                    match self.database_body(
                        &node,
                        block,
                        base,
                        std::borrow::Cow::Borrowed(&ctx),
                        each_sensitive,
                        targets.clone(),
                    ) {
                        true if self.value_read => {
                            let item = self.out.databases.last().expect("just evaluated");
                            values.insert(key, instance_value(&item.inst));
                        }
                        true => {}
                        false => ok = false,
                    }
                }
                Value::Object(values)
            }
        };
        if self.value_read {
            self.ns.declare(Kind::Database, label, value);
        }
        ok
    }

    /// Evaluates one database block instance into `out.databases` (its value for
    /// references is [`instance_value`]); false if it had errors.
    pub(super) fn database_body(
        &mut self,
        owner: &Node,
        block: &RawBlock,
        base: String,
        ctx: std::borrow::Cow<'_, Context<'static>>,
        each_sensitive: bool,
        targets: Targets,
    ) -> bool {
        let mut r = Reader::with(ctx);
        let service = block.attr("service").and_then(|attr| {
            let s = self.service_ref(&mut r, attr, "service.pg")?;
            if s.engine.is_sql() {
                return Some((s.name.clone(), s.engine));
            }
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
            let Some(attr) = block.attr(key).filter(|a| !r.is_null(a)) else {
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
            return false;
        };
        if !ok {
            return false;
        }
        if let Some((p, _)) = &password {
            if !p.is_empty() {
                self.out.secrets.push(p.clone());
            }
        }
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
        self.out.databases.push(DbItem {
            node: owner.clone(),
            inst,
            head: block.head_loc.clone(),
            name_loc,
            targets,
        });
        true
    }
}

/// The value of a database instance for references (`database.x.name`, a tenant's
/// `self.database`). The password is the configured one, or a marker for the one
/// generated during apply. Built only where something reads it: most of 100,000 tenant
/// instances' databases are read by nobody.
pub(super) fn instance_value(inst: &DbInstance) -> Value {
    let password = match &inst.password {
        Some(p) => Value::from(p.as_str()),
        None => Value::from(terrace_provider::refs::marker(
            &Address::new(format!("{}.user", inst.base)),
            "password",
        )),
    };
    let privileges = inst.privileges.iter().map(|p| Value::from(p.as_str()));
    obj(vec![
        ("service", Value::from(inst.service.as_str())),
        ("name", Value::from(inst.name.as_str())),
        ("user", Value::from(inst.user.as_str())),
        (
            "connection_limit",
            inst.connection_limit.map_or(Value::Null, Value::from),
        ),
        ("privileges", Value::Array(privileges.collect())),
        (
            "charset",
            match inst.engine {
                Engine::Postgres => Value::Null,
                _ => Value::from(inst.charset.as_deref().unwrap_or("utf8mb4")),
            },
        ),
        (
            "collation",
            inst.collation.clone().map_or(Value::Null, Value::from),
        ),
        ("password", password),
    ])
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

/// The attributes that are set, given in name order: the map is built at its final
/// size in one go. Inserting one by one through `Attrs`' copy-on-write access grew the
/// vector pair by pair (and checked for sharing at each), 7 % of lowering 100,000
/// tenants.
fn attrs<const N: usize>(pairs: [(&str, Option<Json>); N]) -> Attrs {
    debug_assert!(pairs.is_sorted_by(|a, b| a.0 < b.0), "attribute names in order");
    let mut map = AttrsMap::with_capacity(pairs.iter().filter(|p| p.1.is_some()).count());
    for (k, v) in pairs {
        if let Some(v) = v {
            if let Some((k, v)) = map.try_append(k.to_string(), v) {
                map.insert(k, v);
            }
        }
    }
    Attrs::from(map)
}

/// A JSON string.
fn text(s: &str) -> Json {
    Json::String(s.to_string())
}

/// Lowers one database instance to its three resources, appended to `out` in address
/// order (`x`, `x.grant`, `x.user`): resolution then finds the resources of instances
/// evaluated in key order sorted already, and skips sorting them. Appended rather than
/// returned: a vector per instance was one more allocation, and each resource was
/// moved twice.
pub(crate) fn lower(db: &DbInstance, provider: &ProviderKey, out: &mut Vec<DesiredResource>) {
    let b = Address::new(&db.base);
    let mut scratch = String::with_capacity(db.base.len() + 6);
    let mut suffixed = |suffix: &str| {
        scratch.clear();
        scratch.push_str(&db.base);
        scratch.push_str(suffix);
        Address::new(&scratch)
    };
    let user_addr = suffixed(".user");
    let grant_addr = suffixed(".grant");
    let s = |attr: &'static str| db.sensitive.contains(attr);
    // The user name comes from `user`, or from `name` when `user` is not set.
    let user_sensitive = if db.user_set { s("user") } else { s("name") };
    let limit = db.connection_limit.map(Json::from);
    let password = db.password.as_deref().map(text);
    let privileges = Json::Array(db.privileges.iter().map(|p| text(p)).collect());

    let mut database_sens = BTreeSet::new();
    let mut user_sens = BTreeSet::new();
    let mut grant_sens = BTreeSet::new();
    let mark = |set: &mut BTreeSet<String>, cond: bool, name: &str| {
        if cond {
            set.insert(name.to_string());
        }
    };
    mark(&mut database_sens, s("name"), "name");
    mark(&mut user_sens, user_sensitive, "name");
    mark(&mut user_sens, s("password"), "password");
    mark(&mut grant_sens, s("name"), "database");
    mark(&mut grant_sens, user_sensitive, "user");
    mark(&mut grant_sens, s("privileges"), "privileges");

    // Pairs in attribute name order (see `attrs`).
    let (database_attrs, user_attrs, grant_attrs) = match db.engine {
        Engine::Postgres => {
            mark(&mut database_sens, user_sensitive, "owner");
            mark(
                &mut database_sens,
                s("connection_limit"),
                "connection_limit",
            );
            (
                attrs([
                    ("connection_limit", limit),
                    ("name", Some(text(&db.name))),
                    ("owner", Some(text(&db.user))),
                ]),
                attrs([("name", Some(text(&db.user))), ("password", password)]),
                attrs([
                    ("database", Some(text(&db.name))),
                    ("privileges", Some(privileges)),
                    ("revoke_public", Some(Json::Bool(true))),
                    ("user", Some(text(&db.user))),
                ]),
            )
        }
        _ => {
            mark(&mut database_sens, s("charset"), "charset");
            mark(&mut database_sens, s("collation"), "collation");
            mark(&mut user_sens, s("connection_limit"), "connection_limit");
            (
                attrs([
                    (
                        "charset",
                        // A collation implies its charset: only default the charset
                        // when neither is given (the provider derives it otherwise).
                        match (&db.charset, &db.collation) {
                            (Some(c), _) => Some(text(c)),
                            (None, None) => Some(text("utf8mb4")),
                            (None, Some(_)) => None,
                        },
                    ),
                    ("collation", db.collation.as_deref().map(text)),
                    ("name", Some(text(&db.name))),
                ]),
                attrs([
                    ("connection_limit", limit),
                    ("host", Some(text("%"))),
                    ("name", Some(text(&db.user))),
                    ("password", password),
                ]),
                attrs([
                    ("database", Some(text(&db.name))),
                    ("host", Some(text("%"))),
                    ("privileges", Some(privileges)),
                    ("user", Some(text(&db.user))),
                ]),
            )
        }
    };
    let database_deps = match db.engine {
        // The owner must exist before the database that names it.
        Engine::Postgres => vec![user_addr.clone()],
        _ => vec![],
    };
    out.extend([
        DesiredResource {
            address: b.clone(),
            type_name: "sql_database".into(),
            provider: provider.clone(),
            attrs: database_attrs,
            sensitive_attrs: database_sens,
            depends_on: database_deps,
            lifecycle: Default::default(),
        },
        DesiredResource {
            address: grant_addr,
            type_name: "sql_grant".into(),
            provider: provider.clone(),
            attrs: grant_attrs,
            sensitive_attrs: grant_sens,
            depends_on: vec![b, user_addr.clone()],
            lifecycle: Default::default(),
        },
        DesiredResource {
            address: user_addr,
            type_name: "sql_user".into(),
            provider: provider.clone(),
            attrs: user_attrs,
            sensitive_attrs: user_sens,
            depends_on: vec![],
            lifecycle: Default::default(),
        },
    ]);
}

impl State<'_> {
    /// The service a block's `service` attribute refers to. Anything but a reference to
    /// a service block is reported (with `example` in the hint) and gives `None`; the
    /// caller checks that the service is of the right engine.
    pub(super) fn service_ref(
        &self,
        r: &mut Reader,
        attr: &RawAttr,
        example: &str,
    ) -> Option<&ServiceSpec> {
        let key = attr as *const RawAttr as usize;
        if let Some(id) = self.invariant_services.borrow().get(&key) {
            return self.out.services.get(id);
        }
        let v = r.value(attr)?;
        let id = block_id(&v, Kind::Service);
        let found = id.as_ref().and_then(|n| self.out.services.get(n));
        if let (Some(id), Some(_)) = (id, found) {
            if instance_invariant(attr) {
                self.invariant_services.borrow_mut().insert(key, id);
            }
        }
        if found.is_none() {
            r.errors.push(wrong_type(
                attr,
                &attr.loc,
                "service",
                "a reference to a service block",
                &v,
                example,
            ));
        }
        found
    }
}
