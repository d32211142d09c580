//! Evaluating `file`, `package`, `daemon`, `firewall_rule` and `command` blocks straight
//! into `host_*` resources of the provider `host.<label>`.
//!
//! Only attributes the user set go into a resource, so that the planner compares
//! nothing else. Values are decoded against the provider's schema, whose checks are
//! the provider's own, so that mistakes are reported with their place in the
//! configuration.

use std::collections::BTreeSet;

use terrace_provider::{Attrs, DesiredResource, ProviderKey, ResourceSchema, Subject};

use super::decode::Decoded;
use super::*;
use crate::model::{BlockDep, HOST_PREFIX};

/// A host block kind (one resource of its provider schema's type per instance): what
/// it reads itself beyond its schema.
pub(super) struct HostedDef {
    pub(super) kind: Kind,
    /// Schema attributes the kind's `body` reads itself instead of the generic decoding.
    pub(super) own: &'static [&'static str],
    /// Completes an instance from the decoded attributes.
    pub(super) body: for<'s> fn(&mut State<'s>, &mut Reader, &Instance, Decoded) -> Option<Body>,
}

/// A body that is just the decoded attributes.
pub(super) fn plain_body(
    _: &mut State<'_>,
    _: &mut Reader,
    _: &Instance,
    d: Decoded,
) -> Option<Body> {
    Some(Body {
        attrs: d.attrs,
        sensitive: d.sensitive,
        identity: None,
        fields: Vec::new(),
        deps: Vec::new(),
    })
}

/// One evaluated file instance, for `restart_on` (found by its value under
/// `file.<label>`, `{ path, host }`).
#[derive(Debug, Clone)]
pub(super) struct FileValue {
    pub(super) address: Address,
    pub(super) host: String,
    pub(super) content: String,
    pub(super) sensitive: bool,
}

/// A host block being evaluated, the same for all its instances.
#[derive(Clone, Copy)]
struct HostedBlock<'b> {
    block: &'b RawBlock,
    def: &'b HostedDef,
    label: &'b str,
    /// References of the block, without `depends_on` and `restart_on`.
    targets: &'b Targets,
}

/// One instance of a host block.
pub(super) struct Instance<'b> {
    pub(super) block: &'b RawBlock,
    pub(super) label: &'b str,
    pub(super) address: String,
    pub(super) ctx: Context<'static>,
    pub(super) each_sensitive: bool,
    pub(super) host: String,
}

/// What a block body produces.
pub(super) struct Body {
    pub(super) attrs: Attrs,
    pub(super) sensitive: BTreeSet<String>,
    pub(super) identity: Option<(String, Loc)>,
    /// Fields of its value besides `host`.
    pub(super) fields: Vec<(&'static str, Value)>,
    pub(super) deps: Vec<Address>,
}

/// The kinds whose blocks own resources (what `depends_on` may list).
fn resource_kinds() -> Vec<&'static str> {
    Kind::ALL
        .iter()
        .filter(|k| k.owns_resources())
        .map(|k| k.keyword())
        .collect()
}

pub(super) const DEPENDS_ON_EXAMPLE: &str = "[package.nginx, file.site]";

impl State<'_> {
    /// Evaluates every instance of a host block and declares its value.
    pub(super) fn hosted(&mut self, label: &str, def: &HostedDef) -> bool {
        let decls = self.decls;
        let node = Node::Block(def.kind, label.to_string());
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
            def,
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
                    let ctx = self.instance_ctx(each);
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
        self.ns.declare(def.kind, label, value);
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
            def,
            label,
            targets,
        } = *b;
        let kind = def.kind;
        let ns = kind.keyword();
        let schema = self.resource_schema(kind);
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
        let decoded = self.decode(&mut r, block, schema, def.own, &address, each_sensitive);
        let body = (def.body)(self, &mut r, &inst, decoded);
        if !r.finish(self.errors) {
            return None;
        }
        let (body, block_deps) = (body?, block_deps?);
        let mut fields = body.fields;
        fields.push(("host", Value::from(host.as_str())));
        let value = obj(fields);
        if kind == Kind::File {
            let content = body.attrs["content"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            let file = FileValue {
                address: Address::new(address.clone()),
                host: host.clone(),
                content,
                sensitive: body.sensitive.contains("content"),
            };
            self.file_values
                .entry(Hashed(value.clone()))
                .or_insert(file);
        }
        self.out.host_resources.push(HostItem {
            node: Node::Block(kind, label.to_string()),
            resource: DesiredResource {
                address: Address::new(address),
                type_name: schema.type_name.to_string(),
                provider: ProviderKey(format!("{HOST_PREFIX}{host}")),
                attrs: body.attrs,
                sensitive_attrs: body.sensitive,
                depends_on: body.deps,
                lifecycle: Default::default(),
            },
            identity: body.identity,
            targets: targets.clone(),
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
    pub(super) fn sensitive_of(
        &self,
        inst: &Instance,
        pairs: &[(&str, &[&str])],
    ) -> BTreeSet<String> {
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

    /// `name`, or the block label; checked by the provider's schema.
    pub(super) fn object_name(
        &self,
        r: &mut Reader,
        inst: &Instance,
        what: &str,
        schema: &ResourceSchema,
    ) -> Option<(String, Loc)> {
        let rule = NameRule {
            default: inst.label,
            default_loc: inst.block.name_loc(),
            example: "\"nginx\"",
            what,
            kind: what,
            help: "",
        };
        let attr = schema.attr("name").expect("named resources have a name");
        r.name_or_default(inst.block, &rule, |n| {
            let subject = Subject {
                address: &inst.address,
                field: "name",
            };
            attr.check(&Json::from(n), &subject)
                .map_err(|p| (String::new(), Some(p.help)))
        })
    }
}
