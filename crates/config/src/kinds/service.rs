//! `service` blocks: SQL servers terrace logs in to, containers, or both.

use super::*;

pub(super) fn eval(s: &mut State<'_>, label: &str) -> bool {
    s.service(label)
}

impl State<'_> {
    /// Evaluates every instance of service block `label` (one without for_each).
    pub(super) fn service(&mut self, label: &str) -> bool {
        self.each_instance(Kind::Service, label, |s, id, key, ctx, each_sensitive| {
            s.service_instance(id, label, key, ctx, each_sensitive)
        })
    }

    /// Evaluates one service instance, `name` being its id (`db` or `db["a"]`, as in its
    /// provider key `service.db["a"]`); its value, or `None` on errors.
    fn service_instance(
        &mut self,
        name: &str,
        label: &str,
        key: Option<&str>,
        ctx: Context<'static>,
        each_sensitive: bool,
    ) -> Option<Value> {
        let decls = self.decls;
        let block = &decls.of(Kind::Service)[label];
        let mut r = Reader::new(ctx.clone());
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
        // Redis takes `endpoint` and `admin` when terrace manages its ACL users; without
        // them it is only a container, like before.
        let is_redis = engine == Some(Engine::Redis);
        let administered = is_redis && (block.attr("endpoint").is_some() || block.attr("admin").is_some());
        let is_sql = engine.map(|e| e.is_sql() || administered);
        let endpoint_example = "{ address = \"127.0.0.1\", port = 5432 }";
        let admin_example = "{ user = \"terrace_admin\", password = var.admin_password }";
        for (key, example) in [("endpoint", endpoint_example), ("admin", admin_example)] {
            // `null` is "not set": missing where required, fine where not used.
            match (is_sql, block.attr(key).filter(|a| !r.is_null(a))) {
                (Some(false), Some(attr)) => {
                    let engine = engine.expect("known engine");
                    r.errors.push(
                        ConfigError::new(
                            ErrorKind::Unsupported,
                            format!("\"{key}\" is not used by a {engine} service"),
                        )
                        .at(&attr.key_loc, format!("not for engine \"{engine}\""))
                        .help(format!(
                            "remove \"{key}\": terrace runs a {engine} service as a container and does not log in to it; only postgres, mysql, mariadb and redis services take endpoint and admin"
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
                        "add `{key} = {example}` to the block: terrace logs in to a {} server to manage its databases and users",
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
        // Settings of a Redis server terrace administers (`CONFIG SET`); the Redis
        // provider checks each name and puts values in the form Redis reports.
        let settings_example = "{ maxmemory = \"256mb\", \"maxmemory-policy\" = \"allkeys-lru\" }";
        let settings = block.attr("settings").and_then(|attr| {
            if !administered {
                r.errors.push(
                    ConfigError::new(
                        ErrorKind::Unsupported,
                        "\"settings\" is only for a Redis service terrace administers",
                    )
                    .at(&attr.key_loc, "not for this service")
                    .help("settings are applied with Redis' CONFIG SET: the service needs engine \"redis\", `endpoint` and `admin`"),
                );
                return None;
            }
            let map = r.string_map(attr, settings_example)?;
            // The provider's own check of the names, shown at the value.
            let check = (self.schemas.0)("redis_config").and_then(|s| s.attr("settings"));
            if let Some(check) = check {
                let subject = terrace_provider::Subject {
                    address: &format!("service.{name}.settings"),
                    field: "settings",
                };
                if let Err(e) = check.check(&Json::Object(map.clone()), &subject) {
                    r.errors.push(
                        ConfigError::new(ErrorKind::InvalidValue, e.message)
                            .at(&attr.loc, e.label)
                            .help(e.help),
                    );
                    return None;
                }
            }
            Some((map, block_targets(std::slice::from_ref(attr))))
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
            return None;
        }
        let engine = engine?;
        let sql = if engine.is_sql() || administered {
            let (Some((address, port)), Some((admin_user, admin_password))) = (endpoint, admin)
            else {
                return None;
            };
            let port = port.unwrap_or(match engine {
                Engine::Postgres => 5432,
                Engine::Redis => 6379,
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
                    owner: Node::Block(Kind::Service, label.to_string()),
                    address: address.clone(),
                    default_name: match key {
                        Some(k) => format!("{label}-{k}"),
                        None => label.to_string(),
                    },
                    ctx,
                    each_sensitive,
                    default_host: host.clone(),
                    targets: block_targets(&c.attrs),
                    deps: Vec::new(),
                    app: false,
                };
                match self.container_body(c, spec) {
                    Some(container_name) => Some((Address::new(address), container_name)),
                    None => return None,
                }
            }
            None => None,
        };
        if let Some((map, targets)) = settings {
            self.out.host_resources.push(HostItem {
                node: Node::Block(Kind::Service, label.to_string()),
                resource: terrace_provider::DesiredResource {
                    address: Address::new(format!("service.{name}.settings")),
                    type_name: "redis_config".into(),
                    provider: terrace_provider::ProviderKey(format!("service.{name}")),
                    attrs: [("settings".to_string(), Json::Object(map))]
                        .into_iter()
                        .collect(),
                    sensitive_attrs: Default::default(),
                    // The server must run before terrace can log in to it.
                    depends_on: container.iter().map(|c| c.0.clone()).collect(),
                    lifecycle: Default::default(),
                },
                identity: None,
                targets,
                block_deps: Vec::new(),
            });
        }
        let value = obj(vec![
            ("name", Value::from(label)),
            ("key", key.map_or(Value::Null, Value::from)),
            ("instance", Value::from(format!("service.{name}"))),
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
        self.out.services.insert(
            name.to_string(),
            ServiceSpec {
                name: name.to_string(),
                engine,
                redis: sql.clone().filter(|_| administered),
                sql: sql.filter(|_| !administered),
                container: container.map(|c| c.0),
                host,
            },
        );
        Some(value)
    }
}
