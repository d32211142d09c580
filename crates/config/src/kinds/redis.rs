//! A tenant's `redis` block: one Redis ACL user (`redis_user`), confined to a key and
//! channel prefix, on a `service` with engine "redis" that terrace administers. Its
//! value (`self.redis.user`, `.password`, `.prefix`) is what the tenant's app reads.

use super::*;
use serde_json::json;
use terrace_provider::{DesiredResource, ProviderKey, Subject};

/// The resource type the block lowers to (its schema is the Redis provider's).
const USER: &str = "redis_user";

impl State<'_> {
    /// Evaluates one `redis` block of a tenant instance; `names` is the instance's
    /// address and the ACL user name when the block sets none. Returns the block's
    /// value and the address of its resource.
    pub(super) fn redis_body(
        &mut self,
        owner: &Node,
        block: &RawBlock,
        names: (&str, String),
        ctx: Context<'static>,
        each_sensitive: bool,
        targets: Targets,
    ) -> Option<(Value, Address)> {
        let (instance, default_user) = names;
        let mut r = Reader::new(ctx);
        let service = block.attr("service").and_then(|attr| {
            let s = self.service_ref(&mut r, attr, "service.cache")?;
            if s.redis.is_some() {
                return Some(s.clone());
            }
            r.errors.push(
                ConfigError::new(
                    ErrorKind::InvalidValue,
                    format!(
                        "service \"{}\" is not a Redis server terrace administers",
                        s.name
                    ),
                )
                .at(&attr.loc, format!("engine \"{}\"", s.engine))
                .help("a redis block needs a service with engine \"redis\" and `endpoint` and `admin`, which terrace logs in with to manage ACL users"),
            );
            None
        });
        let prefix = r.string(block, "prefix", "\"wp_client:\"");
        let user = r.string(block, "user", "\"wp_client\"");
        let password = r.string(block, "password", "var.redis_password");
        // Redis has no per-user client limit: this is the tenant's share of the
        // server's `maxclients`, which the plan's connection budget checks.
        let connection_limit = block
            .attr("connection_limit")
            .and_then(|_| r.int(block, "connection_limit", (0, 1_000_000), "20"));
        let purge_keys = r.bool(block, "purge_keys");
        // The provider's own checks of the name and prefix, shown at the value.
        let address = format!("{instance}.redis");
        let schema = (self.schemas.0)(USER);
        let user_loc = user
            .as_ref()
            .map(|u| u.1.clone())
            .unwrap_or(block.head_loc.clone());
        let name = user.as_ref().map_or(default_user, |u| u.0.clone());
        for (field, value, loc) in [
            ("name", Some(name.as_str()), Some(&user_loc)),
            (
                "prefix",
                prefix.as_ref().map(|p| p.0.as_str()),
                prefix.as_ref().map(|p| &p.1),
            ),
        ] {
            let (Some(schema), Some(value), Some(loc)) = (schema, value, loc) else {
                continue;
            };
            let Some(a) = schema.attr(field) else {
                continue;
            };
            let subject = Subject {
                address: &address,
                field,
            };
            if let Err(e) = a.check(&json!(value), &subject) {
                let help = if user.is_none() && field == "name" {
                    format!(
                        "{} (the name defaults to the tenant and its key; set `user = ...`)",
                        e.help
                    )
                } else {
                    e.help
                };
                r.errors.push(
                    ConfigError::new(ErrorKind::InvalidIdentifier, e.message)
                        .at(loc, e.label)
                        .help(help),
                );
            }
        }
        let mut sensitive = BTreeSet::new();
        for (key, attr) in [
            ("prefix", "prefix"),
            ("user", "name"),
            ("password", "password"),
        ] {
            if block
                .attr(key)
                .is_some_and(|a| self.is_sensitive(a, each_sensitive))
            {
                sensitive.insert(attr.to_string());
            }
        }
        let ok = r.finish(self.errors);
        let (Some(service), Some((prefix, _))) = (service, prefix) else {
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
        let address = Address::new(address);
        let password_value = match &password {
            Some((p, _)) => Value::from(p.as_str()),
            None => Value::from(terrace_provider::refs::marker(&address, "password")),
        };
        let mut attrs = terrace_provider::Attrs::new();
        attrs.insert("name".into(), json!(name));
        attrs.insert("prefix".into(), json!(prefix));
        if let Some((p, _)) = &password {
            attrs.insert("password".into(), json!(p));
        }
        if let Some(n) = connection_limit {
            attrs.insert("connection_limit".into(), json!(n));
        }
        if let Some(purge) = purge_keys {
            attrs.insert("purge_keys".into(), json!(purge));
        }
        self.out.host_resources.push(HostItem {
            node: owner.clone(),
            resource: DesiredResource {
                address: address.clone(),
                type_name: USER.into(),
                provider: ProviderKey(format!("service.{}", service.name)),
                attrs,
                sensitive_attrs: sensitive,
                // The server must run before terrace can log in to it.
                depends_on: service.container.iter().cloned().collect(),
                lifecycle: Default::default(),
            },
            // One ACL user per name and server: two blocks would fight over it.
            identity: Some((format!("Redis user \"{name}\""), user_loc)),
            targets,
            block_deps: Vec::new(),
        });
        let value = obj(vec![
            ("service", Value::from(service.name.as_str())),
            ("user", Value::from(name.as_str())),
            ("prefix", Value::from(prefix.as_str())),
            ("password", password_value),
        ]);
        Some((value, address))
    }
}

/// The default ACL user name of a tenant instance: its label and key, with every
/// character a Redis user name cannot hold replaced by `_`.
pub(super) fn default_user(label: &str, key: Option<&str>) -> String {
    let raw = match key {
        Some(k) => format!("{label}_{k}"),
        None => label.to_string(),
    };
    raw.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect()
}
