//! `tenant` blocks: per instance, databases, volumes and one `app` container.

use super::*;

pub(super) fn eval(s: &mut State<'_>, label: &str) -> bool {
    s.tenant(label)
}

impl State<'_> {
    pub(super) fn tenant(&mut self, label: &str) -> bool {
        let decls = self.decls;
        let block = &decls.of(Kind::Tenant)[label];
        let Some((instances, each_sensitive)) = self.instances(block) else {
            return false;
        };
        let node = Node::Block(Kind::Tenant, label.to_string());
        let for_each_targets = block_targets(&block.attrs);
        // Per inner block, found once and shared by every instance.
        let inner_targets: Vec<Targets> = block
            .blocks
            .iter()
            .map(|b| joined_targets(&for_each_targets, b))
            .collect();
        let targets_of = |b: &RawBlock| {
            let i = block.blocks.iter().position(|x| std::ptr::eq(x, b));
            inner_targets[i.expect("an inner block of this tenant")].clone()
        };
        let app = block.blocks.iter().find(|b| b.kind == "app");
        let mut ok = true;
        let keyed = instances.is_some();
        let list: Vec<(Option<String>, Option<Value>)> = match instances {
            Some(v) => v.into_iter().map(|(k, e)| (Some(k), Some(e))).collect(),
            None => vec![(None, None)],
        };
        let Some(placed) = self.place(block, label, &list) else {
            return false;
        };
        // Every instance adds one item per database block: room for all of them at
        // once, where growing by doubling copied the items made so far (some 40 MB at
        // 100,000 instances) into fresh memory each time.
        let databases = block.blocks.iter().filter(|b| b.kind == "database").count();
        self.out.databases.reserve(list.len() * databases);
        let mut values = Map::new();
        // One context for every instance, `each` and `self` replaced in it: building one
        // per instance cloned every value the block reads.
        let mut ctx = self.ctx();
        let mut declared_host: Option<Option<String>> = None;
        for ((key, each), tenant_host) in list.into_iter().zip(placed) {
            if let Some(each) = each {
                self.enter_instance(&mut ctx, each);
            }
            // `self.host` in every nested block: `service = service.db[self.host.key]`.
            let host_value = tenant_host
                .as_ref()
                .and_then(|h| self.host_values.get(h).cloned())
                .unwrap_or(Value::Null);
            // Declared again only when the host changes: the instances of a tenant
            // without placement all share `self = { host = null }`.
            if declared_host.as_ref() != Some(&tenant_host) {
                ctx.declare_var("self", obj(vec![("host", host_value.clone())]));
                declared_host = Some(tenant_host.clone());
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
                let targets = targets_of(db);
                // Its value serves the app (`self.database`) and the tenant's own value.
                let value_wanted = app.is_some() || self.value_read;
                let evaluated = self.database_body(
                    &node,
                    db,
                    base.clone(),
                    std::borrow::Cow::Borrowed(&ctx),
                    each_sensitive,
                    targets,
                );
                if !evaluated {
                    instance_ok = false;
                    continue;
                }
                // What follows only serves the app block (its `self` and dependencies).
                if app.is_some() {
                    for suffix in ["", ".user", ".grant"] {
                        db_addresses.push(Address::new(format!("{base}{suffix}")));
                    }
                }
                let item = self.out.databases.last().expect("just evaluated");
                let mut fields: Vec<&str> = item.inst.sensitive.iter().copied().collect();
                if !item.inst.user_set && item.inst.sensitive.contains("name") {
                    fields.push("user");
                }
                fields.push("password");
                for f in fields.into_iter().filter(|_| app.is_some()) {
                    let mut path = vec!["database".to_string()];
                    path.extend(db_label.clone());
                    path.push(f.to_string());
                    sensitive_paths.push(path);
                }
                if !value_wanted {
                    continue;
                }
                match (db_label, super::database::instance_value(&item.inst)) {
                    (Some(l), v) => {
                        dbs.insert(l, v);
                    }
                    (None, Value::Object(fields)) => dbs.extend(fields),
                    (None, _) => {}
                }
            }

            // The Redis ACL user, before the app that reads `self.redis`.
            let mut redis_value = Value::Null;
            let mut redis_address = None;
            let redis_blocks: Vec<&RawBlock> =
                block.blocks.iter().filter(|b| b.kind == "redis").collect();
            for extra in redis_blocks.iter().skip(1) {
                self.errors.push(
                    ConfigError::new(
                        ErrorKind::Duplicate,
                        format!("tenant \"{label}\" has more than one redis block"),
                    )
                    .at(&extra.head_loc, "another redis block")
                    .at(&redis_blocks[0].head_loc, "first redis block")
                    .help("a tenant has one Redis user; its prefix confines all of its keys"),
                );
                instance_ok = false;
            }
            if let Some(rb) = redis_blocks.first() {
                let targets = targets_of(rb);
                let user = super::redis::default_user(label, key.as_deref());
                match self.redis_body(&node, rb, (&instance, user), ctx.clone(), each_sensitive, targets) {
                    Some((v, a)) => {
                        redis_value = v;
                        redis_address = Some(a);
                        sensitive_paths.push(vec!["redis".into(), "password".into()]);
                        for (attr, field) in [("prefix", "prefix"), ("user", "user")] {
                            if rb.attr(attr).is_some_and(|x| self.is_sensitive(x, each_sensitive)) {
                                sensitive_paths.push(vec!["redis".into(), field.into()]);
                            }
                        }
                    }
                    None => instance_ok = false,
                }
            }

            // Volumes default to the engine the app runs on.
            let app_host = app.and_then(|a| {
                // Errors are reported when the app block itself is evaluated.
                let mut r = Reader::with(std::borrow::Cow::Borrowed(&ctx));
                self.host_attr(&mut r, a)
            })
            .or(tenant_host.clone());
            let mut volumes = Map::new();
            let mut volume_addresses = Vec::new();
            for v in block.blocks.iter().filter(|b| b.kind == "volume") {
                let l = v.label();
                let address = format!("{instance}.volume[{}]", quote(l));
                let default_name = match &key {
                    Some(k) => format!("{label}_{k}_{l}"),
                    None => format!("{label}_{l}"),
                };
                let targets = targets_of(v);
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
                            ("redis", redis_value.clone()),
                            ("volume", Value::Object(volumes.clone())),
                            ("host", host_value.clone()),
                        ]),
                    );
                    // The app is created after what it reads through `self`.
                    let mut deps = Vec::new();
                    for r in a.attrs.iter().flat_map(|x| crate::refs::collect(&x.expr).0) {
                        match &r.target {
                            Target::SelfRef(s) if s == "database" => {
                                deps.extend(db_addresses.iter().cloned())
                            }
                            Target::SelfRef(s) if s == "redis" => {
                                deps.extend(redis_address.iter().cloned())
                            }
                            Target::SelfRef(_) => deps.extend(volume_addresses.iter().cloned()),
                            _ => {}
                        }
                    }
                    let targets = targets_of(a);
                    let spec = docker::ContainerCtx {
                        owner: node.clone(),
                        address: format!("{instance}.app"),
                        default_name: match &key {
                            Some(k) => format!("{label}-{k}"),
                            None => label.to_string(),
                        },
                        ctx: actx,
                        each_sensitive,
                        // A placed tenant's app runs on its host unless it says otherwise.
                        default_host: tenant_host.clone(),
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
            if !self.value_read {
                continue;
            }
            let value = obj(vec![
                ("name", Value::from(label)),
                ("key", key.clone().map_or(Value::Null, Value::from)),
                ("database", Value::Object(dbs)),
                ("redis", redis_value),
                ("volume", Value::Object(volumes)),
                ("app", app_value),
                ("host", host_value),
            ]);
            values.insert(key.unwrap_or_default(), value);
        }
        let value = if keyed {
            Value::Object(values)
        } else {
            values.swap_remove("").unwrap_or(Value::Null)
        };
        if self.value_read {
            self.ns.declare(Kind::Tenant, label, value);
        }
        ok
    }
}
