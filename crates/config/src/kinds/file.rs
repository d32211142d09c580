//! `file` blocks: a file on a host (`host_file`), its content literal or rendered
//! from a template.

use serde_json::Value as Json;
use terrace_provider::Attrs;

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

/// User and group names the provider accepts.
fn account(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && !s.starts_with('-')
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

impl State<'_> {
    pub(super) fn file_body(&mut self, r: &mut Reader, inst: &Instance) -> Option<Body> {
        let block = inst.block;
        let path = r.string(block, "path", "\"/etc/nginx/nginx.conf\"");
        if let Some((p, loc)) = &path {
            if let Err(why) = remote_path(p) {
                r.errors.push(
                    ConfigError::new(
                        ErrorKind::InvalidValue,
                        format!("invalid path \"{}\": {why}", p.escape_debug()),
                    )
                    .at(loc, why)
                    .help("a file's path on the host is absolute, e.g. \"/etc/nginx/sites-available/app\""),
                );
            }
        }
        let (content_attr, source_attr) = (block.attr("content"), block.attr("source"));
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
                    None => match crate::templates::read(self.dir, &source, &loc) {
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
        let mut accounts = Vec::new();
        for key in ["owner", "group"] {
            let v = r.string(block, key, "\"root\"");
            if let Some((a, loc)) = &v {
                if !account(a) {
                    r.errors.push(
                        ConfigError::new(
                            ErrorKind::InvalidValue,
                            format!("invalid {key} \"{}\"", a.escape_debug()),
                        )
                        .at(loc, format!("not a valid {key} name"))
                        .help(format!("a {key} is an account name of letters, digits, `_`, `-` and `.`, e.g. \"www-data\"")),
                    );
                }
            }
            accounts.push(v.map(|x| x.0));
        }
        let ((path, path_loc), content) = (path?, content?);
        let mut attrs = Attrs::new();
        attrs.insert("path".into(), Json::from(path.as_str()));
        attrs.insert("content".into(), Json::from(content));
        if let Some(m) = mode {
            attrs.insert("mode".into(), Json::from(m));
        }
        for (key, v) in ["owner", "group"].into_iter().zip(accounts) {
            if let Some(v) = v {
                attrs.insert(key.into(), Json::from(v));
            }
        }
        let mut sensitive = self.sensitive_of(
            inst,
            &[
                ("path", &["path"]),
                ("content", &["content", "source"]),
                ("mode", &["mode"]),
                ("owner", &["owner"]),
                ("group", &["group"]),
            ],
        );
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
