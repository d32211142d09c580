//! Reading `*.hcl` files and checking their structure against the block schemas.
//!
//! The result keeps hcl-edit expressions (which carry spans) unevaluated: evaluation
//! happens later, in dependency order.

use std::collections::BTreeMap;
use std::path::Path;

use hcl::edit::expr::Expression;
use hcl::edit::structure::{Block, BlockLabel, Body, Structure};
use hcl::edit::Span;

use crate::diagnostics::{list_names, suggest, ConfigError, ErrorKind};
use crate::model::{Kind, Node};
use crate::source::{FileRef, Loc, SourceFile};

/// An attribute with its key and value locations.
#[derive(Debug, Clone)]
pub(crate) struct RawAttr {
    pub key: String,
    pub key_loc: Loc,
    pub expr: Expression,
    /// The value expression's location.
    pub loc: Loc,
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

/// What a block type accepts.
pub(crate) struct BlockSchema {
    pub kind: &'static str,
    pub min_labels: usize,
    pub max_labels: usize,
    pub label_hint: &'static str,
    /// `None` accepts any attribute name (`locals`).
    pub attrs: Option<&'static [&'static str]>,
    pub required: &'static [&'static str],
    pub blocks: &'static [&'static BlockSchema],
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

static VARIABLE: BlockSchema = BlockSchema {
    kind: "variable",
    min_labels: 1,
    max_labels: 1,
    label_hint: "variable \"name\" { ... }",
    attrs: Some(&["type", "default", "description", "sensitive"]),
    required: &[],
    blocks: &[],
};
static LOCALS: BlockSchema = BlockSchema {
    kind: "locals",
    min_labels: 0,
    max_labels: 0,
    label_hint: "locals { name = value }",
    attrs: None,
    required: &[],
    blocks: &[],
};
static HOST: BlockSchema = BlockSchema {
    kind: "host",
    min_labels: 1,
    max_labels: 1,
    label_hint: "host \"name\" { ... }",
    attrs: Some(&[
        "address",
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
static SERVICE: BlockSchema = BlockSchema {
    kind: "service",
    min_labels: 1,
    max_labels: 1,
    label_hint: "service \"name\" { ... }",
    attrs: Some(&["engine", "endpoint", "admin", "host"]),
    // `endpoint` and `admin` are required for SQL engines only: checked on evaluation.
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
    "host",
];
static CONTAINER: BlockSchema = BlockSchema {
    kind: "container",
    min_labels: 0,
    max_labels: 0,
    label_hint: "container { image = ... }",
    attrs: Some(CONTAINER_ATTRS),
    required: &["image"],
    blocks: &[],
};
static APP: BlockSchema = BlockSchema {
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
        "host",
        "domain",
        "port",
    ]),
    required: &["image"],
    blocks: &[],
};
static NESTED_VOLUME: BlockSchema = BlockSchema {
    kind: "volume",
    min_labels: 1,
    max_labels: 1,
    label_hint: "volume \"name\" { ... }",
    attrs: Some(&["name", "driver", "host"]),
    required: &[],
    blocks: &[],
};
static IMAGE: BlockSchema = BlockSchema {
    kind: "image",
    min_labels: 1,
    max_labels: 1,
    label_hint: "image \"name\" { name = \"repo:tag\" }",
    attrs: Some(&["for_each", "host", "name", "pull", "source", "cmd"]),
    required: &["name"],
    blocks: &[],
};
static NETWORK: BlockSchema = BlockSchema {
    kind: "network",
    min_labels: 1,
    max_labels: 1,
    label_hint: "network \"name\" { ... }",
    attrs: Some(&["for_each", "host", "name", "driver", "internal"]),
    required: &[],
    blocks: &[],
};
static VOLUME: BlockSchema = BlockSchema {
    kind: "volume",
    min_labels: 1,
    max_labels: 1,
    label_hint: "volume \"name\" { ... }",
    attrs: Some(&["for_each", "host", "name", "driver"]),
    required: &[],
    blocks: &[],
};
static NESTED_DATABASE: BlockSchema = BlockSchema {
    kind: "database",
    min_labels: 0,
    max_labels: 1,
    label_hint: "database { ... } or database \"name\" { ... }",
    attrs: Some(DATABASE_ATTRS),
    required: &["service", "name"],
    blocks: &[],
};
static TENANT: BlockSchema = BlockSchema {
    kind: "tenant",
    min_labels: 1,
    max_labels: 1,
    label_hint: "tenant \"name\" { ... }",
    attrs: Some(&["for_each"]),
    required: &[],
    blocks: &[&NESTED_DATABASE, &NESTED_VOLUME, &APP],
};
static DATABASE: BlockSchema = BlockSchema {
    kind: "database",
    min_labels: 1,
    max_labels: 1,
    label_hint: "database \"name\" { ... }",
    attrs: Some(TOP_DATABASE_ATTRS),
    required: &["service", "name"],
    blocks: &[],
};

static FILE: BlockSchema = BlockSchema {
    kind: "file",
    min_labels: 1,
    max_labels: 1,
    label_hint: "file \"name\" { host = host.web1, path = \"/etc/...\" }",
    attrs: Some(&[
        "for_each",
        "host",
        "depends_on",
        "path",
        "content",
        "source",
        "mode",
        "owner",
        "group",
    ]),
    // Exactly one of `content` and `source`: checked on evaluation.
    required: &["host", "path"],
    blocks: &[],
};
static PACKAGE: BlockSchema = BlockSchema {
    kind: "package",
    min_labels: 1,
    max_labels: 1,
    label_hint: "package \"name\" { host = host.web1 }",
    attrs: Some(&["for_each", "host", "depends_on", "name", "state", "version"]),
    required: &["host"],
    blocks: &[],
};
static DAEMON: BlockSchema = BlockSchema {
    kind: "daemon",
    min_labels: 1,
    max_labels: 1,
    label_hint: "daemon \"name\" { host = host.web1 }",
    attrs: Some(&[
        "for_each",
        "host",
        "depends_on",
        "name",
        "running",
        "enabled",
        "restart_on",
    ]),
    required: &["host"],
    blocks: &[],
};
static FIREWALL_RULE: BlockSchema = BlockSchema {
    kind: "firewall_rule",
    min_labels: 1,
    max_labels: 1,
    label_hint: "firewall_rule \"name\" { host = host.db1, port = 3306, allow_from = [...] }",
    attrs: Some(&[
        "for_each",
        "host",
        "depends_on",
        "port",
        "proto",
        "allow_from",
        "comment",
    ]),
    required: &["host", "port", "allow_from"],
    blocks: &[],
};
static COMMAND: BlockSchema = BlockSchema {
    kind: "command",
    min_labels: 1,
    max_labels: 1,
    label_hint: "command \"name\" { host = host.web1, command = \"...\" }",
    attrs: Some(&[
        "for_each",
        "host",
        "depends_on",
        "command",
        "creates",
        "unless",
    ]),
    required: &["host", "command"],
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
    /// A labelled block of a kind from the registry.
    Block(Kind),
}

impl TopLevel {
    /// Every top-level block type, in the order help texts list them.
    fn all() -> impl Iterator<Item = TopLevel> + Clone {
        [TopLevel::Variable, TopLevel::Locals]
            .into_iter()
            .chain(Kind::ALL.iter().map(|k| TopLevel::Block(*k)))
    }

    /// What the block type accepts.
    fn schema(self) -> &'static BlockSchema {
        match self {
            TopLevel::Variable => &VARIABLE,
            TopLevel::Locals => &LOCALS,
            TopLevel::Block(kind) => kind_schema(kind),
        }
    }
}

/// The schema of each labelled block kind.
fn kind_schema(kind: Kind) -> &'static BlockSchema {
    match kind {
        Kind::Host => &HOST,
        Kind::Service => &SERVICE,
        Kind::Tenant => &TENANT,
        Kind::Database => &DATABASE,
        Kind::Image => &IMAGE,
        Kind::Network => &NETWORK,
        Kind::Volume => &VOLUME,
        Kind::File => &FILE,
        Kind::Package => &PACKAGE,
        Kind::Daemon => &DAEMON,
        Kind::FirewallRule => &FIREWALL_RULE,
        Kind::Command => &COMMAND,
    }
}

/// Reads every `*.hcl` file of `dir`, sorted by name.
pub(crate) fn read_dir(dir: &Path) -> Result<Vec<FileRef>, ConfigError> {
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
        return Err(ConfigError::new(
            ErrorKind::Io,
            format!("no *.hcl files in {}", dir.display()),
        )
        .help("terrace loads every *.hcl file of the configuration directory"));
    }
    paths.into_iter().map(|p| read_file(&p)).collect()
}

/// Reads one file (a configuration or a --var-file).
pub(crate) fn read_file(path: &Path) -> Result<FileRef, ConfigError> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(SourceFile::new(path.to_path_buf(), text)),
        Err(e) => Err(ConfigError::new(
            ErrorKind::Io,
            format!("cannot read {}: {e}", path.display()),
        )),
    }
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

/// Checks the top-level blocks of one parsed file.
pub(crate) fn top_level_blocks(
    file: &FileRef,
    body: &Body,
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
                match TopLevel::all().find(|t| t.schema().kind == kind) {
                    Some(top) => {
                        if let Some(b) = check_block(file, block, top.schema(), errors) {
                            out.push((top, b));
                        }
                    }
                    None => errors.push(unknown_block(
                        file,
                        block,
                        TopLevel::all().map(|t| t.schema().kind),
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

fn check_block(
    file: &FileRef,
    block: &Block,
    schema: &BlockSchema,
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
            .help(format!(
                "write it as `{} {}`",
                schema.kind, schema.label_hint
            )),
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
                if let Some(first) = attrs.iter().find(|a| a.key == key) {
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
                attrs.push(RawAttr {
                    key,
                    key_loc,
                    loc: Loc::new(file, attr.value.span()),
                    expr: attr.value.clone(),
                });
            }
            Structure::Block(inner) => {
                let kind = inner.ident.as_str();
                match schema.blocks.iter().find(|s| s.kind == kind) {
                    Some(inner_schema) => {
                        if let Some(b) = check_block(file, inner, inner_schema, errors) {
                            blocks.push(b);
                        }
                    }
                    None => errors.push(unknown_block(
                        file,
                        inner,
                        schema.blocks.iter().map(|s| s.kind),
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
