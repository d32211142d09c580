//! File templates: the `source` of a `file` block, read at load time and rendered as
//! an HCL string template with the block's context (`var`, `local`, `host`, `each`, ...).
//!
//! When the path is known before evaluation (a literal, or built from variables only),
//! the template is read up front so that its references order the evaluation like the
//! block's own, and unknown names in it are reported with their place in the template.
//! Other paths (built from `each` or locals) are read when the block is evaluated.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use hcl::eval::{Context, Evaluate};

use crate::diagnostics::{ConfigError, ErrorKind};
use crate::kind::Kind;
use crate::refs::{self, Ref, RefProblem, Target};
use crate::source::{FileRef, Loc, SourceFile};
use crate::syntax::Decls;

/// A parsed template and its references.
#[derive(Debug, Clone)]
pub(crate) struct Template {
    /// The template file (diagnostics quote it).
    pub file: FileRef,
    pub parsed: hcl::edit::template::Template,
    pub refs: Vec<Ref>,
    pub problems: Vec<RefProblem>,
}

/// Templates read before evaluation, by file block label; `None` if reading failed
/// (reported already).
pub(crate) type Templates = BTreeMap<String, Option<Template>>;

/// The template path: absolute as written, else relative to the configuration directory.
pub(crate) fn resolve(dir: &Path, source: &str) -> PathBuf {
    let joined = dir.join(source);
    std::path::absolute(&joined).unwrap_or(joined)
}

/// Reads and parses a template; `source_loc` is where its path is written.
pub(crate) fn read(
    dir: &Path,
    source: &str,
    source_loc: &Loc,
) -> Result<Template, Vec<ConfigError>> {
    let path = resolve(dir, source);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) => {
            let label = match e.kind() {
                std::io::ErrorKind::NotFound => "no such file".to_string(),
                _ => e.to_string(),
            };
            return Err(vec![ConfigError::new(
                ErrorKind::Io,
                format!(
                    "cannot read template \"{}\": {e}",
                    source.escape_debug()
                ),
            )
            .at(source_loc, label)
            .help(format!(
                "`source` is a template file, relative to the configuration directory ({}); create {} or fix the path",
                dir.display(),
                path.display()
            ))]);
        }
    };
    let file = SourceFile::new(path, text);
    let parsed = match hcl::edit::parser::parse_template(&file.text) {
        Ok(t) => t,
        Err(e) => {
            let offset = e.location().offset().min(file.text.len());
            let end = (offset + 1).min(file.text.len());
            let end = if file.text.is_char_boundary(end) {
                end
            } else {
                offset
            };
            return Err(vec![ConfigError::new(
                ErrorKind::Parse,
                format!("syntax error in template: {}", e.message()),
            )
            .at(&Loc::new(&file, Some(offset..end)), "here")
            .at(source_loc, "the template of this file block")
            .help("a template is text with `${ expression }` interpolations and `%{ if ... }`/`%{ for ... }` directives; write `$${` or `%%{` for a literal `${` or `%{`")]);
        }
    };
    let (refs, problems) = refs::collect_template(&parsed);
    Ok(Template {
        file,
        parsed,
        refs,
        problems,
    })
}

/// Reads the templates whose path is known before evaluation (a literal string, or
/// one built from variables and functions only).
pub(crate) fn preload(
    decls: &Decls,
    base: &Context<'static>,
    dir: &Path,
    errors: &mut Vec<ConfigError>,
) -> Templates {
    let mut out = Templates::new();
    for (label, block) in decls.of(Kind::File) {
        // With `content` too, the conflict is what gets reported.
        let Some(attr) = block
            .attr("source")
            .filter(|_| block.attr("content").is_none())
        else {
            continue;
        };
        let (found, problems) = refs::collect(&attr.expr);
        let static_path =
            problems.is_empty() && found.iter().all(|r| matches!(r.target, Target::Var(_)));
        if !static_path {
            continue;
        }
        // Errors (a failed variable, a wrong type) are reported when the block is
        // evaluated.
        let Ok(hcl::Value::String(source)) =
            hcl::Expression::from(attr.expr.clone()).evaluate(base)
        else {
            continue;
        };
        match read(dir, &source, &attr.loc) {
            Ok(t) => {
                out.insert(label.clone(), Some(t));
            }
            Err(e) => {
                errors.extend(e);
                out.insert(label.clone(), None);
            }
        }
    }
    out
}

/// Renders a template; an error points at the first top-level interpolation that fails
/// (or at the file block's `source` when that cannot be told).
pub(crate) fn render(
    t: &Template,
    ctx: &Context<'static>,
    source_loc: &Loc,
) -> Result<String, ConfigError> {
    let template = hcl::Template::from(t.parsed.clone());
    match template.evaluate(ctx) {
        Ok(s) => Ok(s),
        Err(e) => {
            let mut at = None;
            for element in t.parsed.iter() {
                if let hcl::edit::template::Element::Interpolation(i) = element {
                    let expr = hcl::Expression::from(i.expr.clone());
                    if expr.evaluate(ctx).is_err() {
                        at = hcl::edit::Span::span(&i.expr).map(|s| Loc::new(&t.file, Some(s)));
                        break;
                    }
                }
            }
            let help = match e.kind() {
                hcl::eval::ErrorKind::NoSuchKey(_) | hcl::eval::ErrorKind::Index(_) => {
                    "the referenced value has no such key or index; check the name and the value it refers to"
                }
                hcl::eval::ErrorKind::FuncCall(..) => "check the function's arguments",
                _ => "check the types of the values this template uses (interpolations need strings, numbers or bools)",
            };
            let err = ConfigError::new(
                ErrorKind::Eval,
                format!("cannot render template {}: {}", t.file.name(), e.kind()),
            );
            Err(match at {
                Some(loc) => err
                    .at(&loc, "while evaluating this interpolation")
                    .at(source_loc, "the template of this file block"),
                None => err.at(source_loc, "while rendering this template"),
            }
            .help(help))
        }
    }
}
