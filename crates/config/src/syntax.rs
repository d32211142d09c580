//! Reading `*.hcl` files and checking their structure against the block schemas.
//!
//! The result keeps hcl-edit expressions (which carry spans) unevaluated: evaluation
//! happens later, in dependency order.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use hcl::edit::expr::Expression;
use hcl::edit::structure::{Block, BlockLabel, Body, Structure};
use hcl::edit::Span;

use crate::diagnostics::{list_names, suggest, ConfigError, ErrorKind};
use terrace_provider::{Presence, ResourceSchema};

use crate::kind::{Placement, ResourceKind, Schemas, Shape};
use crate::model::{Kind, Node};
use crate::source::{Env, FileRef, Loc, SourceFile};

/// An attribute with its key and value locations.
#[derive(Debug, Clone)]
pub(crate) struct RawAttr {
    pub key: String,
    pub key_loc: Loc,
    pub expr: Expression,
    /// The value expression's location.
    pub loc: Loc,
    /// The block's schema requires it: `null` is an error here, where for an optional
    /// attribute it means "not set".
    pub required: bool,
    /// What evaluating it needs, derived from `expr` once (see [`RawAttr::evaluable`]).
    pub cache: ExprCache,
}

/// What is derived from an attribute's expression on first use and kept: an attribute
/// of a block with `for_each` is evaluated once per instance, and converting (cloning)
/// its expression (and walking it for references) for every one of them cost an
/// allocation per expression node per instance.
#[derive(Debug, Clone, Default)]
pub(crate) struct ExprCache {
    evaluable: std::cell::OnceCell<hcl::Expression>,
    refs: std::cell::OnceCell<Vec<crate::refs::Ref>>,
    calls: std::cell::OnceCell<bool>,
}

impl RawAttr {
    /// The expression as hcl-rs evaluates it.
    pub(crate) fn evaluable(&self) -> &hcl::Expression {
        self.cache
            .evaluable
            .get_or_init(|| hcl::Expression::from(self.expr.clone()))
    }

    /// The references the expression makes (see [`crate::refs::collect`]).
    pub(crate) fn refs(&self) -> &[crate::refs::Ref] {
        self.cache
            .refs
            .get_or_init(|| crate::refs::collect(&self.expr).0)
    }

    /// True if the expression calls a function (see [`crate::refs::calls_function`]).
    pub(crate) fn calls_function(&self) -> bool {
        *self
            .cache
            .calls
            .get_or_init(|| crate::refs::calls_function(&self.expr))
    }
}

/// A block whose attribute names and nesting have been checked.
#[derive(Debug, Clone)]
pub(crate) struct RawBlock {
    pub kind: String,
    pub labels: Vec<(String, Loc)>,
    /// The block type keyword through its last label: where "missing attribute" points.
    pub head_loc: Loc,
    pub attrs: Vec<RawAttr>,
    pub blocks: Vec<RawBlock>,
}

impl RawBlock {
    /// The attribute named `name`, if set.
    pub fn attr(&self, name: &str) -> Option<&RawAttr> {
        self.attrs.iter().find(|a| a.key == name)
    }

    /// The first label (blocks that need one always have it after checking).
    pub fn label(&self) -> &str {
        self.labels.first().map_or("", |(l, _)| l.as_str())
    }

    /// Where the block's name is written (its label, else its type keyword).
    pub fn name_loc(&self) -> &Loc {
        self.labels.first().map_or(&self.head_loc, |(_, l)| l)
    }
}

/// What a block type accepts: written out for `variable`, `locals` and the composite
/// kinds, derived from the provider's schema for the one-to-one kinds.
#[derive(Clone, Copy)]
pub(crate) struct BlockSchema<'s> {
    pub kind: &'s str,
    pub min_labels: usize,
    pub max_labels: usize,
    /// The block written out, for help texts (`host "name" { ... }`).
    pub label_hint: &'s str,
    /// `None` accepts any attribute name (`locals`).
    pub attrs: Option<&'s [&'s str]>,
    pub required: &'s [&'s str],
    pub blocks: &'s [&'s BlockSchema<'s>],
}

const DATABASE_ATTRS: &[&str] = &[
    "service",
    "name",
    "connection_limit",
    "user",
    "password",
    "privileges",
    "charset",
    "collation",
];

const TOP_DATABASE_ATTRS: &[&str] = &[
    "for_each",
    "service",
    "name",
    "connection_limit",
    "user",
    "password",
    "privileges",
    "charset",
    "collation",
];

static VARIABLE: BlockSchema<'static> = BlockSchema {
    kind: "variable",
    min_labels: 1,
    max_labels: 1,
    label_hint: "variable \"name\" { ... }",
    attrs: Some(&["type", "default", "description", "sensitive", "directory"]),
    required: &[],
    blocks: &[],
};
static LOCALS: BlockSchema<'static> = BlockSchema {
    kind: "locals",
    min_labels: 0,
    max_labels: 0,
    label_hint: "locals { name = value }",
    attrs: None,
    required: &[],
    blocks: &[],
};
static BACKEND: BlockSchema<'static> = BlockSchema {
    kind: "backend",
    min_labels: 1,
    max_labels: 1,
    label_hint: "backend \"pg\" { url = \"pg://USER@HOST/DATABASE\" }",
    attrs: Some(&["url", "state", "path"]),
    required: &[],
    blocks: &[],
};
pub(crate) static TERRACE: BlockSchema<'static> = BlockSchema {
    kind: "terrace",
    min_labels: 0,
    max_labels: 0,
    label_hint: "terrace { backend \"pg\" { ... } }",
    attrs: Some(&[]),
    required: &[],
    blocks: &[&BACKEND],
};
static MOVED: BlockSchema<'static> = BlockSchema {
    kind: "moved",
    min_labels: 0,
    max_labels: 0,
    label_hint: "moved { ... }",
    attrs: Some(&["from", "to"]),
    required: &["from", "to"],
    blocks: &[],
};
static HOST: BlockSchema<'static> = BlockSchema {
    kind: "host",
    min_labels: 1,
    max_labels: 1,
    label_hint: "host \"name\" { ... }",
    attrs: Some(&[
        "for_each",
        "address",
        "memory",
        "port",
        "user",
        "identity_file",
        "known_hosts",
        "host_key_check",
        "become",
        "docker",
    ]),
    required: &["address"],
    blocks: &[],
};
static SERVICE: BlockSchema<'static> = BlockSchema {
    kind: "service",
    min_labels: 1,
    max_labels: 1,
    label_hint: "service \"name\" { ... }",
    attrs: Some(&[
        "for_each", "engine", "endpoint", "admin", "host", "settings",
    ]),
    // `endpoint` and `admin` are required for SQL engines only, `settings` is for
    // Redis: checked on evaluation.
    required: &["engine"],
    blocks: &[&CONTAINER],
};
/// Attributes of a container (a service's `container` block, a tenant's `app`).
pub(crate) const CONTAINER_ATTRS: &[&str] = &[
    "image",
    "name",
    "command",
    "env",
    "labels",
    "ports",
    "mounts",
    "networks",
    "memory",
    "restart",
    "healthcheck",
    "running",
    "init",
    "stop_signal",
    "stop_timeout",
    "host",
];
static CONTAINER: BlockSchema<'static> = BlockSchema {
    kind: "container",
    min_labels: 0,
    max_labels: 0,
    label_hint: "container { image = ... }",
    attrs: Some(CONTAINER_ATTRS),
    required: &["image"],
    blocks: &[],
};
static APP: BlockSchema<'static> = BlockSchema {
    kind: "app",
    min_labels: 0,
    max_labels: 0,
    label_hint: "app { image = ... }",
    attrs: Some(&[
        "image",
        "name",
        "command",
        "env",
        "labels",
        "ports",
        "mounts",
        "networks",
        "memory",
        "restart",
        "healthcheck",
        "running",
        "init",
        "stop_signal",
        "stop_timeout",
        "host",
        "domain",
        "port",
    ]),
    required: &["image"],
    blocks: &[],
};
static NESTED_VOLUME: BlockSchema<'static> = BlockSchema {
    kind: "volume",
    min_labels: 1,
    max_labels: 1,
    label_hint: "volume \"name\" { ... }",
    attrs: Some(&["name", "driver", "host"]),
    required: &[],
    blocks: &[],
};
static NESTED_DATABASE: BlockSchema<'static> = BlockSchema {
    kind: "database",
    min_labels: 0,
    max_labels: 1,
    label_hint: "database { ... } or database \"name\" { ... }",
    attrs: Some(DATABASE_ATTRS),
    required: &["service", "name"],
    blocks: &[],
};
/// A tenant's Redis ACL user (`kinds/redis.rs`).
static NESTED_REDIS: BlockSchema<'static> = BlockSchema {
    kind: "redis",
    min_labels: 0,
    max_labels: 0,
    label_hint: "redis { service = service.cache  prefix = \"app:\" }",
    attrs: Some(&[
        "service",
        "prefix",
        "user",
        "password",
        "connection_limit",
        "purge_keys",
    ]),
    required: &["service", "prefix"],
    blocks: &[],
};
/// A tenant's placement rule (`kinds/placement.rs`).
static PLACEMENT: BlockSchema<'static> = BlockSchema {
    kind: "placement",
    min_labels: 0,
    max_labels: 0,
    label_hint: "placement { hosts = host.web  strategy = \"fill\" }",
    attrs: Some(&["hosts", "strategy"]),
    required: &["hosts"],
    blocks: &[],
};
static TENANT: BlockSchema<'static> = BlockSchema {
    kind: "tenant",
    min_labels: 1,
    max_labels: 1,
    label_hint: "tenant \"name\" { ... }",
    attrs: Some(&["for_each", "host"]),
    required: &[],
    blocks: &[
        &NESTED_DATABASE,
        &NESTED_REDIS,
        &NESTED_VOLUME,
        &APP,
        &PLACEMENT,
    ],
};
static OUTPUT: BlockSchema<'static> = BlockSchema {
    kind: "output",
    min_labels: 1,
    max_labels: 1,
    label_hint: "output \"name\" { value = ... }",
    attrs: Some(&["value", "sensitive", "description"]),
    required: &["value"],
    blocks: &[],
};
static DATABASE: BlockSchema<'static> = BlockSchema {
    kind: "database",
    min_labels: 1,
    max_labels: 1,
    label_hint: "database \"name\" { ... }",
    attrs: Some(TOP_DATABASE_ATTRS),
    required: &["service", "name"],
    blocks: &[],
};

/// What a top-level block declares: an input variable, local values, or a labelled
/// block of one kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TopLevel {
    /// `variable "name" { ... }`.
    Variable,
    /// `locals { ... }`.
    Locals,
    /// `moved { from = ADDR, to = ADDR }` (one attribute a line).
    Moved,
    /// `terrace { backend "pg" { ... } }`: settings of terrace itself.
    Terrace,
    /// A labelled block of a kind from the registry.
    Block(Kind),
}

impl TopLevel {
    /// Every top-level block type, in the order help texts list them.
    fn all() -> impl Iterator<Item = TopLevel> + Clone {
        [
            TopLevel::Variable,
            TopLevel::Locals,
            TopLevel::Moved,
            TopLevel::Terrace,
        ]
        .into_iter()
        .chain(Kind::ALL.iter().map(|k| TopLevel::Block(*k)))
    }

    /// The block keyword.
    fn keyword(self) -> &'static str {
        match self {
            TopLevel::Variable => "variable",
            TopLevel::Locals => "locals",
            TopLevel::Moved => "moved",
            TopLevel::Terrace => "terrace",
            TopLevel::Block(kind) => kind.keyword(),
        }
    }
}

/// The block schema of each composite kind, from the registry.
macro_rules! composite_schemas {
    ($($variant:ident => $module:ident, $noun:literal, $body:literal, $resources:literal, $shape:ident $args:tt;)*) => {
        /// The written-out schema of a composite kind (`None` for a one-to-one kind).
        fn composite_schema(kind: Kind) -> Option<&'static BlockSchema<'static>> {
            match kind {
                $(Kind::$variant => composite_schemas!(@one $shape $args),)*
            }
        }
    };
    (@one composite ($schema:ident)) => { Some(&$schema) };
    (@one $placement:ident $args:tt) => { None };
}
crate::kind::with_registry!(composite_schemas);

/// The parts of a one-to-one kind's block schema that are computed from its provider's
/// resource schema.
struct Derived {
    keyword: &'static str,
    attrs: Vec<&'static str>,
    required: Vec<&'static str>,
    hint: String,
}

impl Derived {
    /// `for_each`, `host` (and `depends_on` on hosts), then every attribute of the
    /// resource type a configuration may set, then the kind's own.
    fn new(kind: Kind, rk: &ResourceKind, schema: &ResourceSchema) -> Derived {
        let mut attrs = vec!["for_each", "host"];
        let mut required = Vec::new();
        if rk.placement == Placement::Host {
            attrs.push("depends_on");
            required.push("host");
        }
        for a in schema
            .attrs
            .iter()
            .filter(|a| a.presence != Presence::Output)
        {
            attrs.push(a.name);
            if a.presence == Presence::Required && !rk.defaulted.contains(&a.name) {
                required.push(a.name);
            }
        }
        attrs.extend(rk.block_only);
        let mut fields: Vec<String> = Vec::new();
        for r in &required {
            let example = match schema.attr(r) {
                Some(a) if !a.example.is_empty() => a.example,
                _ if *r == "host" => "host.web1",
                _ => "...",
            };
            fields.push(format!("{r} = {example}"));
        }
        let body = if fields.is_empty() {
            "{ ... }".to_string()
        } else {
            format!("{{ {} }}", fields.join(", "))
        };
        Derived {
            keyword: kind.keyword(),
            attrs,
            required,
            hint: format!("{} \"name\" {body}", kind.keyword()),
        }
    }

    fn schema(&self) -> BlockSchema<'_> {
        BlockSchema {
            kind: self.keyword,
            min_labels: 1,
            max_labels: 1,
            label_hint: &self.hint,
            attrs: Some(&self.attrs),
            required: &self.required,
            blocks: &[],
        }
    }
}

/// The schema of every top-level block type, for one configuration.
pub(crate) struct TopSchemas {
    /// The derived schemas of the one-to-one kinds, by [`Kind::index`].
    derived: Vec<Option<Derived>>,
}

impl TopSchemas {
    /// Derives the one-to-one kinds' schemas from the providers' schemas.
    pub(crate) fn new(schemas: Schemas<'_>) -> TopSchemas {
        let derived = Kind::ALL
            .iter()
            .map(|k| match k.shape() {
                Shape::Composite => None,
                Shape::Resource(rk) => Some(Derived::new(*k, &rk, schemas.of(&rk))),
            })
            .collect();
        TopSchemas { derived }
    }

    /// What a block type accepts.
    fn get(&self, top: TopLevel) -> BlockSchema<'_> {
        let fixed = match top {
            TopLevel::Variable => &VARIABLE,
            TopLevel::Locals => &LOCALS,
            TopLevel::Moved => &MOVED,
            TopLevel::Terrace => &TERRACE,
            TopLevel::Block(kind) => match composite_schema(kind) {
                Some(s) => s,
                None => {
                    return self.derived[kind.index()]
                        .as_ref()
                        .expect("one-to-one kinds have a derived schema")
                        .schema()
                }
            },
        };
        *fixed
    }
}

/// Reads every `*.hcl` file of `dir`, sorted by name, as (path, text) pairs.
pub(crate) fn read_dir(dir: &Path) -> Result<Vec<(PathBuf, String)>, ConfigError> {
    let io_err = |e: std::io::Error| {
        ConfigError::new(
            ErrorKind::Io,
            format!("cannot read configuration directory {}: {e}", dir.display()),
        )
        .help("pass the directory that holds your *.hcl files")
    };
    let mut paths = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io_err)? {
        let path = entry.map_err(io_err)?.path();
        if path.extension().is_some_and(|e| e == "hcl") && path.is_file() {
            paths.push(path);
        }
    }
    paths.sort();
    if paths.is_empty() {
        return Err(no_files(dir));
    }
    paths
        .into_iter()
        .map(|p| match std::fs::read_to_string(&p) {
            Ok(text) => Ok((p, text)),
            Err(e) => Err(read_error(&p, e)),
        })
        .collect()
}

/// The error for a configuration without files.
pub(crate) fn no_files(dir: &Path) -> ConfigError {
    ConfigError::new(
        ErrorKind::Io,
        format!("no *.hcl files in {}", dir.display()),
    )
    .help("terrace loads every *.hcl file of the configuration directory")
}

/// Reads one file (a configuration or a --var-file).
pub(crate) fn read_file(env: &dyn Env, path: &Path) -> Result<FileRef, ConfigError> {
    match env.read(path) {
        Ok(text) => Ok(SourceFile::new(path.to_path_buf(), text)),
        Err(e) => Err(read_error(path, e)),
    }
}

fn read_error(path: &Path, e: std::io::Error) -> ConfigError {
    ConfigError::new(
        ErrorKind::Io,
        format!("cannot read {}: {e}", path.display()),
    )
}

/// Parses a file into an hcl-edit body, turning a syntax error into a located diagnostic.
pub(crate) fn parse(file: &FileRef) -> Result<Body, ConfigError> {
    hcl::edit::parser::parse_body(&file.text).map_err(|e| {
        let offset = e.location().offset().min(file.text.len());
        let end = (offset + 1).min(file.text.len());
        let end = if file.text.is_char_boundary(end) {
            end
        } else {
            offset
        };
        ConfigError::new(ErrorKind::Parse, format!("syntax error: {}", e.message()))
            .at(&Loc::new(file, Some(offset..end)), "here")
            .help(
                "check the HCL syntax near this point (unbalanced braces or quotes, a missing `=`)",
            )
    })
}

/// `lifecycle { ... }`, the meta-block every resource-owning block accepts (read by
/// `lifecycle.rs`).
pub(crate) static LIFECYCLE: BlockSchema<'static> = BlockSchema {
    kind: "lifecycle",
    min_labels: 0,
    max_labels: 0,
    label_hint: "lifecycle { ... }",
    attrs: Some(&["prevent_destroy", "ignore_changes", "expires_at", "ttl"]),
    required: &[],
    blocks: &[],
};

/// Checks the top-level blocks of one parsed file.
pub(crate) fn top_level_blocks(
    file: &FileRef,
    body: &Body,
    schemas: &TopSchemas,
    errors: &mut Vec<ConfigError>,
) -> Vec<(TopLevel, RawBlock)> {
    let mut out = Vec::new();
    for structure in body.iter() {
        match structure {
            Structure::Attribute(attr) => {
                errors.push(
                    ConfigError::new(
                        ErrorKind::UnknownAttribute,
                        format!(
                            "unexpected attribute \"{}\" at the top level",
                            attr.key.as_str()
                        ),
                    )
                    .at(&Loc::new(file, attr.key.span()), "not inside a block")
                    .help("put values in a `locals { ... }` block, or set them inside a block"),
                );
            }
            Structure::Block(block) => {
                let kind = block.ident.as_str();
                match TopLevel::all().find(|t| t.keyword() == kind) {
                    Some(top) => {
                        let meta: &[&BlockSchema] = match top {
                            TopLevel::Block(k) if k.owns_resources() => &[&LIFECYCLE],
                            _ => &[],
                        };
                        if let Some(b) = check_block(file, block, &schemas.get(top), meta, errors) {
                            out.push((top, b));
                        }
                    }
                    None => errors.push(unknown_block(
                        file,
                        block,
                        TopLevel::all().map(|t| t.keyword()),
                        "the top level",
                    )),
                }
            }
        }
    }
    out
}

fn unknown_block<'a>(
    file: &FileRef,
    block: &Block,
    allowed: impl Iterator<Item = &'a str> + Clone,
    place: &str,
) -> ConfigError {
    let kind = block.ident.as_str();
    ConfigError::new(
        ErrorKind::UnknownBlock,
        format!("unknown block type \"{kind}\" in {place}"),
    )
    .at(&Loc::new(file, block.ident.span()), "unknown block type")
    .help(suggest(kind, allowed, |all| {
        format!("allowed block types here: {}", list_names(&all))
    }))
}

fn label_loc(file: &FileRef, label: &BlockLabel) -> Loc {
    Loc::new(file, label.span())
}

/// Checks one block against its schema; `meta` are the meta-blocks it accepts besides
/// its schema's own (`lifecycle` on top-level blocks that own resources).
pub(crate) fn check_block(
    file: &FileRef,
    block: &Block,
    schema: &BlockSchema,
    meta: &[&BlockSchema],
    errors: &mut Vec<ConfigError>,
) -> Option<RawBlock> {
    let ident_loc = Loc::new(file, block.ident.span());
    let labels: Vec<(String, Loc)> = block
        .labels
        .iter()
        .map(|l| (l.as_str().to_string(), label_loc(file, l)))
        .collect();
    let head_loc = labels
        .last()
        .map_or(ident_loc.clone(), |(_, l)| ident_loc.to(l));
    let mut ok = true;
    if labels.len() < schema.min_labels || labels.len() > schema.max_labels {
        let loc = if labels.len() > schema.max_labels {
            labels[schema.max_labels].1.clone()
        } else {
            ident_loc.clone()
        };
        errors.push(
            ConfigError::new(
                ErrorKind::InvalidLabel,
                format!(
                    "a {} block takes {} label{}, found {}",
                    schema.kind,
                    if schema.min_labels == schema.max_labels {
                        schema.max_labels.to_string()
                    } else {
                        format!("{} or {}", schema.min_labels, schema.max_labels)
                    },
                    if schema.max_labels == 1 { "" } else { "s" },
                    labels.len()
                ),
            )
            .at(&loc, "wrong number of labels")
            .help(format!("write it as `{}`", schema.label_hint)),
        );
        ok = false;
    }
    for (label, loc) in &labels {
        if !is_name(label) {
            errors.push(
                ConfigError::new(
                    ErrorKind::InvalidLabel,
                    format!("invalid {} name \"{label}\"", schema.kind),
                )
                .at(loc, "not a valid name")
                .help(
                    "names start with a letter or underscore and contain only ASCII letters, digits, underscores and hyphens",
                ),
            );
        }
    }

    let mut attrs: Vec<RawAttr> = Vec::new();
    // Where each attribute is in `attrs`: a scan made a large `locals` block quadratic.
    let mut index: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
    let mut blocks = Vec::new();
    for structure in block.body.iter() {
        match structure {
            Structure::Attribute(attr) => {
                let key = attr.key.as_str().to_string();
                let key_loc = Loc::new(file, attr.key.span());
                if let Some(allowed) = schema.attrs {
                    if !allowed.contains(&key.as_str()) {
                        errors.push(
                            ConfigError::new(
                                ErrorKind::UnknownAttribute,
                                format!("unknown attribute \"{key}\" in a {} block", schema.kind),
                            )
                            .at(&key_loc, "unknown attribute")
                            .help(suggest(
                                &key,
                                allowed.iter().copied(),
                                |all| format!("allowed attributes: {}", list_names(&all)),
                            )),
                        );
                        continue;
                    }
                }
                if let Some(first) = index.get(attr.key.as_str()).map(|i| &attrs[*i]) {
                    errors.push(
                        ConfigError::new(
                            ErrorKind::Duplicate,
                            format!("attribute \"{key}\" is set twice"),
                        )
                        .at(&key_loc, "set again here")
                        .at(&first.key_loc, "first set here")
                        .help("remove one of the two"),
                    );
                    continue;
                }
                index.insert(attr.key.as_str(), attrs.len());
                attrs.push(RawAttr {
                    required: schema.required.contains(&key.as_str()),
                    key,
                    key_loc,
                    loc: Loc::new(file, attr.value.span()),
                    expr: attr.value.clone(),
                    cache: ExprCache::default(),
                });
            }
            Structure::Block(inner) => {
                let kind = inner.ident.as_str();
                match schema.blocks.iter().chain(meta).find(|s| s.kind == kind) {
                    Some(inner_schema) => {
                        if let Some(b) = check_block(file, inner, inner_schema, &[], errors) {
                            blocks.push(b);
                        }
                    }
                    None => errors.push(unknown_block(
                        file,
                        inner,
                        schema.blocks.iter().chain(meta).map(|s| s.kind),
                        &format!("a {} block", schema.kind),
                    )),
                }
            }
        }
    }
    for required in schema.required {
        if !attrs.iter().any(|a| a.key == *required) {
            errors.push(
                ConfigError::new(
                    ErrorKind::MissingAttribute,
                    format!("missing required attribute \"{required}\""),
                )
                .at(
                    &head_loc,
                    format!("this {} block has no \"{required}\"", schema.kind),
                )
                .help(format!("add `{required} = ...` to the block")),
            );
        }
    }
    ok.then(|| RawBlock {
        kind: schema.kind.to_string(),
        labels,
        head_loc,
        attrs,
        blocks,
    })
}

/// Block labels become parts of addresses: keep them to plain names.
pub(crate) fn is_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// Top-level blocks sorted by type, with duplicate names reported.
#[derive(Debug, Default)]
pub(crate) struct Decls {
    pub variables: BTreeMap<String, RawBlock>,
    pub locals: BTreeMap<String, RawAttr>,
    /// `moved` blocks, in file order.
    pub moved: Vec<RawBlock>,
    /// `terrace` blocks, in file order.
    pub settings: Vec<RawBlock>,
    /// Labelled blocks by kind ([`Kind::index`]), then by label.
    blocks: [BTreeMap<String, RawBlock>; Kind::COUNT],
}

impl Decls {
    /// The blocks of one kind, by label.
    pub fn of(&self, kind: Kind) -> &BTreeMap<String, RawBlock> {
        &self.blocks[kind.index()]
    }

    /// The top-level block of a node (`None` for a local value, or an unknown label).
    pub fn block(&self, node: &Node) -> Option<&RawBlock> {
        match node {
            Node::Local(_) => None,
            Node::Block(kind, label) => self.of(*kind).get(label),
        }
    }

    /// Sorts blocks into their namespaces.
    pub fn collect(blocks: Vec<(TopLevel, RawBlock)>, errors: &mut Vec<ConfigError>) -> Decls {
        let mut d = Decls::default();
        for (top, block) in blocks {
            let (map, what) = match top {
                TopLevel::Locals => {
                    for attr in block.attrs {
                        if let Some(first) = d.locals.get(&attr.key) {
                            errors.push(duplicate(
                                "local value",
                                &attr.key,
                                &attr.key_loc,
                                &first.key_loc,
                            ));
                        } else {
                            d.locals.insert(attr.key.clone(), attr);
                        }
                    }
                    continue;
                }
                TopLevel::Moved => {
                    d.moved.push(block);
                    continue;
                }
                TopLevel::Terrace => {
                    d.settings.push(block);
                    continue;
                }
                TopLevel::Variable => (&mut d.variables, "variable"),
                TopLevel::Block(kind) => {
                    if kind == Kind::Tenant {
                        check_tenant_blocks(&block, errors);
                    }
                    (&mut d.blocks[kind.index()], kind.keyword())
                }
            };
            let name = block.label().to_string();
            if let Some(first) = map.get(&name) {
                errors.push(duplicate(what, &name, block.name_loc(), first.name_loc()));
            } else {
                map.insert(name, block);
            }
        }
        d
    }
}

/// A tenant has at most one `app` block, and its volume labels are unique.
fn check_tenant_blocks(block: &RawBlock, errors: &mut Vec<ConfigError>) {
    let apps: Vec<&RawBlock> = block.blocks.iter().filter(|b| b.kind == "app").collect();
    for extra in apps.iter().skip(1) {
        errors.push(
            ConfigError::new(
                ErrorKind::Duplicate,
                format!("tenant \"{}\" has more than one app block", block.label()),
            )
            .at(&extra.head_loc, "another app block")
            .at(&apps[0].head_loc, "first app block")
            .help("a tenant instance runs one app container; declare other containers as `service` blocks with engine = \"container\""),
        );
    }
    let mut seen: BTreeMap<&str, &Loc> = BTreeMap::new();
    for v in block.blocks.iter().filter(|b| b.kind == "volume") {
        if let Some(first) = seen.get(v.label()) {
            errors.push(duplicate("volume", v.label(), v.name_loc(), first));
        } else {
            seen.insert(v.label(), v.name_loc());
        }
    }
}

/// A duplicate-definition error: label on the second, pointer to the first.
pub(crate) fn duplicate(what: &str, name: &str, second: &Loc, first: &Loc) -> ConfigError {
    ConfigError::new(
        ErrorKind::Duplicate,
        format!("{what} \"{name}\" is defined twice"),
    )
    .at(second, "defined again here")
    .at(first, "first defined here")
    .help(format!(
        "names share one namespace across all files; rename or remove one (the first is at {})",
        first.describe()
    ))
}
