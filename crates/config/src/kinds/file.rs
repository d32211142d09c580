//! `file` blocks: a file on a host (`host_file`), its content literal or rendered
//! from a template.

use super::decode::Decoded;
use super::hosted::*;
use super::*;

/// An octal file mode (`"0644"`, `"755"`, `644`) in four digits.
fn file_mode(v: &Value) -> Option<String> {
    let raw = match v {
        Value::String(s) => s.trim().trim_start_matches("0o").to_string(),
        Value::Number(n) => match n.as_f64() {
            Some(f) if f.fract() == 0.0 && f >= 0.0 => format!("{}", f as u64),
            _ => return None,
        },
        _ => return None,
    };
    let ok = (3..=4).contains(&raw.len()) && raw.chars().all(|c| ('0'..='7').contains(&c));
    ok.then(|| format!("{raw:0>4}"))
}

pub(super) fn eval(s: &mut State<'_>, label: &str) -> bool {
    s.hosted(label, &DEF)
}

static DEF: HostedDef = HostedDef {
    kind: Kind::File,
    own: &["content", "mode"],
    body,
};

fn body(s: &mut State<'_>, r: &mut Reader, inst: &Instance, d: Decoded) -> Option<Body> {
    s.file_body(r, inst, d)
}

impl State<'_> {
    fn file_body(&mut self, r: &mut Reader, inst: &Instance, d: Decoded) -> Option<Body> {
        let block = inst.block;
        let Decoded {
            mut attrs,
            mut sensitive,
        } = d;
        let path = attrs
            .get("path")
            .and_then(Json::as_str)
            .zip(block.attr("path"))
            .map(|(p, a)| (p.to_string(), a.loc.clone()));
        // `null` is "not set": `content = lookup(var.inline, each.key, null)` with a
        // `source` fallback reads as either one.
        let set = |key: &str| block.attr(key).filter(|a| !r.is_null(a));
        let (content_attr, source_attr) = (set("content"), set("source"));
        let mut template_sensitive = false;
        let content = match (content_attr, source_attr) {
            (Some(c), Some(s)) => {
                r.errors.push(
                    ConfigError::new(
                        ErrorKind::InvalidValue,
                        "\"content\" and \"source\" are both set",
                    )
                    .at(&s.key_loc, "source set here")
                    .at(&c.key_loc, "content set here")
                    .help("a file's content comes from exactly one of them: `content = \"...\"` inline, or `source = \"templates/app.conf\"` (a template file); remove one"),
                );
                None
            }
            (None, None) => {
                r.errors.push(
                    ConfigError::new(
                        ErrorKind::MissingAttribute,
                        "missing \"content\" or \"source\"",
                    )
                    .at(&block.head_loc, "this file block has neither content nor source")
                    .help("add `content = \"...\"` for inline content, or `source = \"templates/app.conf\"` for a template file relative to the configuration directory"),
                );
                None
            }
            (Some(_), None) => r
                .string(block, "content", "\"bind 0.0.0.0\\n\"")
                .map(|c| c.0),
            (None, Some(attr)) => {
                let (source, loc) = r.string(block, "source", "\"templates/app.conf\"")?;
                let loaded;
                let template = match self.templates.get(inst.label) {
                    Some(Some(t)) => t,
                    // Read before evaluation failed: reported already.
                    Some(None) => return None,
                    None => match crate::templates::read(self.fs, &source, &loc) {
                        Ok(t) => {
                            for p in &t.problems {
                                r.errors.push(
                                    ConfigError::new(p.kind, p.message.clone())
                                        .at(
                                            &Loc::new(&t.file, Some(p.span.clone())),
                                            p.label.clone(),
                                        )
                                        .help(p.help.clone()),
                                );
                            }
                            loaded = t;
                            &loaded
                        }
                        Err(e) => {
                            r.errors.extend(e);
                            return None;
                        }
                    },
                };
                template_sensitive = self.refs_sensitive(&template.refs, inst.each_sensitive);
                match crate::templates::render(template, &inst.ctx, &attr.loc) {
                    Ok(s) => Some(s),
                    Err(e) => {
                        r.errors.push(e);
                        None
                    }
                }
            }
        };
        let mode = block.attr("mode").and_then(|attr| {
            let v = r.value(attr)?;
            let m = file_mode(&v);
            if m.is_none() {
                let shown = match &v {
                    Value::String(s) => format!("\"{}\"", s.escape_debug()),
                    other => other.to_string(),
                };
                r.errors.push(
                    ConfigError::new(
                        ErrorKind::InvalidValue,
                        format!("invalid file mode {shown}"),
                    )
                    .at(&attr.loc, "not an octal file mode")
                    .help("write the mode as three or four octal digits (0-7), e.g. mode = \"0644\" or mode = \"0755\""),
                );
            }
            m
        });
        let ((path, path_loc), content) = (path?, content?);
        attrs.insert("content".into(), Json::from(content));
        if let Some(m) = mode {
            attrs.insert("mode".into(), Json::from(m));
        }
        sensitive.extend(self.sensitive_of(
            inst,
            &[("content", &["content", "source"]), ("mode", &["mode"])],
        ));
        if template_sensitive {
            sensitive.insert("content".into());
        }
        if sensitive.contains("content") {
            // The hash of a secret is as good as the secret to anyone who can guess the
            // rest of the file; and a secret file is private unless the mode says so.
            sensitive.insert("content_sha256".into());
            attrs
                .entry("mode".to_string())
                .or_insert_with(|| Json::from("0600"));
        }
        Some(Body {
            attrs,
            sensitive,
            identity: Some((format!("file path \"{path}\""), path_loc)),
            fields: vec![("path", Value::from(path))],
            deps: Vec::new(),
        })
    }
}
