//! `package` blocks: a Debian package on a host (`host_package`).

use serde_json::Value as Json;
use terrace_provider::Attrs;

use super::hosted::*;
use super::*;

/// A Debian package name, optionally with `:arch`.
fn package_name(n: &str) -> bool {
    let (pkg, arch) = n.split_once(':').unwrap_or((n, "a"));
    pkg.len() >= 2
        && pkg.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && pkg
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "+-.".contains(c))
        && !arch.is_empty()
        && arch.chars().all(|c| c.is_ascii_alphanumeric())
}

fn package_version(v: &str) -> bool {
    v.starts_with(|c: char| c.is_ascii_digit())
        && v.chars()
            .all(|c| c.is_ascii_alphanumeric() || ".+~:-".contains(c))
}

impl State<'_> {
    pub(super) fn package_body(&mut self, r: &mut Reader, inst: &Instance) -> Option<Body> {
        let block = inst.block;
        let name = self.object_name(
            r,
            inst,
            "package",
            package_name,
            "Debian package names have at least two characters: lower-case letters, digits, `+`, `-` and `.`, starting with a letter or digit (e.g. \"redis-server\"), optionally followed by `:arch`",
        );
        let state = r
            .string(block, "state", "\"present\"")
            .filter(|s| one_of(r, "state", s, &["present", "absent"], "not a package state"));
        let version = r.string(block, "version", "\"5:7.0.15-1~deb12u1\"");
        if let Some((v, loc)) = &version {
            if !package_version(v) {
                r.errors.push(
                    ConfigError::new(
                        ErrorKind::InvalidValue,
                        format!("invalid package version \"{}\"", v.escape_debug()),
                    )
                    .at(loc, "not a Debian version")
                    .help("a Debian version starts with a digit and has only letters, digits and `.+~:-`, e.g. \"5:7.0.15-1~deb12u1\" (see `apt-cache policy <package>`)"),
                );
            }
        }
        if let (Some((s, sloc)), Some(_)) = (&state, &version) {
            if s == "absent" {
                r.errors.push(
                    ConfigError::new(
                        ErrorKind::InvalidValue,
                        "a version makes no sense with state = \"absent\"",
                    )
                    .at(sloc, "the package is removed")
                    .help("remove `version`, or set state = \"present\""),
                );
            }
        }
        let (name, name_loc) = name?;
        let mut attrs = Attrs::new();
        attrs.insert("name".into(), Json::from(name.as_str()));
        if let Some((s, _)) = &state {
            attrs.insert("state".into(), Json::from(s.as_str()));
        }
        if let Some((v, _)) = &version {
            attrs.insert("version".into(), Json::from(v.as_str()));
        }
        let sensitive = self.sensitive_of(
            inst,
            &[
                ("name", &["name"]),
                ("state", &["state"]),
                ("version", &["version"]),
            ],
        );
        Some(Body {
            attrs,
            sensitive,
            identity: Some((format!("package \"{name}\""), name_loc)),
            fields: vec![("name", Value::from(name))],
            deps: Vec::new(),
        })
    }
}
