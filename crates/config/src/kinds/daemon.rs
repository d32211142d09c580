//! `daemon` blocks: a system service on a host (`host_service`), restarted when the
//! files of `restart_on` change.

use super::decode::Decoded;
use super::hosted::*;
use super::*;
use sha2::{Digest, Sha256};

/// The lower-case hex SHA-256 of the files' contents, each followed by a NUL byte.
fn restart_token(contents: &[&str]) -> String {
    let mut h = Sha256::new();
    for c in contents {
        h.update(c.as_bytes());
        h.update([0u8]);
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

pub(super) fn eval(s: &mut State<'_>, label: &str) -> bool {
    s.hosted(label, &DEF)
}

static DEF: HostedDef = HostedDef {
    kind: Kind::Daemon,
    own: &["name", "restart_on"],
    body,
};

fn body(s: &mut State<'_>, r: &mut Reader, inst: &Instance, mut d: Decoded) -> Option<Body> {
    let block = inst.block;
    let schema = s.resource_schema(Kind::Daemon);
    let name = s.object_name(r, inst, "service", schema);
    let restart = block
        .attr("restart_on")
        .and_then(|attr| s.restart_on(r, attr, &inst.host));
    let (name, name_loc) = name?;
    d.attrs.insert("name".into(), Json::from(name.as_str()));
    d.sensitive.extend(s.sensitive_of(
        inst,
        &[("name", &["name"]), ("restart_on", &["restart_on"])],
    ));
    let mut deps = Vec::new();
    if let Some(files) = restart {
        let contents: Vec<&str> = files.iter().map(|f| f.content.as_str()).collect();
        d.attrs
            .insert("restart_on".into(), Json::from(restart_token(&contents)));
        // A hash of a secret is as good as the secret for guessing it.
        if files.iter().any(|f| f.sensitive) {
            d.sensitive.insert("restart_on".into());
        }
        deps.extend(files.into_iter().map(|f| f.address));
    } else if block.attr("restart_on").is_some() {
        return None;
    }
    Some(Body {
        attrs: d.attrs,
        sensitive: d.sensitive,
        identity: Some((format!("service \"{name}\""), name_loc)),
        fields: vec![("name", Value::from(name))],
        deps,
    })
}

impl State<'_> {
    /// `restart_on`: a list of file references (a for_each block stands for all its
    /// instances), in order.
    pub(super) fn restart_on(
        &self,
        r: &mut Reader,
        attr: &RawAttr,
        host: &str,
    ) -> Option<Vec<FileValue>> {
        let example = "[file.nginx_site]";
        let v = r.value(attr)?;
        let Value::Array(items) = &v else {
            r.errors.push(wrong_type(
                attr,
                &attr.loc,
                "restart_on",
                "a list of file references",
                &v,
                example,
            ));
            return None;
        };
        let find = |v: &Value| self.file_values.get(&Hashed(v.clone()));
        let mut out = Vec::new();
        let mut ok = true;
        for (i, item) in items.iter().enumerate() {
            let files: Option<Vec<&FileValue>> = find(item).map(|f| vec![f]).or_else(|| {
                let Value::Object(map) = item else {
                    return None;
                };
                let all: Option<Vec<&FileValue>> = map.values().map(find).collect();
                all.filter(|a| !a.is_empty())
            });
            let at = item_loc(attr, i);
            let Some(files) = files else {
                // Say what it refers to when it is written as a reference.
                let what = match &attr.expr {
                    Expression::Array(a) => match a.iter().nth(i) {
                        Some(Expression::Traversal(t)) => match &t.expr {
                            Expression::Variable(root) if root.as_str() != "file" => {
                                Some(format!("a {} reference, not a file", root.as_str()))
                            }
                            _ => None,
                        },
                        _ => None,
                    },
                    _ => None,
                };
                r.errors.push(
                    ConfigError::new(
                        ErrorKind::WrongType,
                        format!(
                            "restart_on[{i}] is not a file reference: found {}",
                            describe(item)
                        ),
                    )
                    .at(&at, what.unwrap_or_else(|| "not a file block".into()))
                    .help(format!(
                        "restart_on lists the file blocks the service reads, e.g. `restart_on = {example}` or `[file.conf[\"key\"]]`; the service restarts when their content changes"
                    )),
                );
                ok = false;
                continue;
            };
            for f in files {
                if f.host != host {
                    r.errors.push(
                        ConfigError::new(
                            ErrorKind::InvalidValue,
                            format!(
                                "restart_on[{i}] is a file on host \"{}\", but this service runs on host \"{host}\"",
                                f.host
                            ),
                        )
                        .at(&at, format!("{} is on host \"{}\"", f.address, f.host))
                        .help("a service restarts when files on its own host change; refer to files with the same `host`"),
                    );
                    ok = false;
                    continue;
                }
                out.push(f.clone());
            }
        }
        ok.then_some(out)
    }
}
