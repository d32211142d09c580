//! `image` blocks: a Docker image (`docker_image`), pulled or built from a tarball.

use serde_json::Value as Json;
use terrace_provider::Attrs;

use super::docker::*;
use super::*;

/// Pull policies of an `image` block.
const PULL: &[&str] = &["never", "if_missing", "always"];

impl State<'_> {
    pub(super) fn image(&mut self, label: &str) -> bool {
        self.top_level(label, Kind::Image, Self::image_body)
    }

    pub(super) fn image_body(&mut self, block: &RawBlock, inst: Instance) -> Option<Value> {
        let mut r = Reader::new(inst.ctx.clone());
        let name = r.string(block, "name", "\"nginx:1.27\"");
        if let Some((n, loc)) = &name {
            if let Err(msg) = validate::image_name(n) {
                r.errors.push(
                    ConfigError::new(
                        ErrorKind::InvalidValue,
                        format!("invalid image name \"{}\": {msg}", n.escape_debug()),
                    )
                    .at(loc, "not an image reference")
                    .help("write an image reference like \"nginx:1.27\" or \"registry.example/team/app:2\""),
                );
            }
        }
        let pull = r.string(block, "pull", "\"if_missing\"");
        if let Some((p, loc)) = &pull {
            if !PULL.contains(&p.as_str()) {
                r.errors.push(
                    ConfigError::new(
                        ErrorKind::InvalidValue,
                        format!("invalid value for \"pull\": \"{}\"", p.escape_debug()),
                    )
                    .at(loc, "not a pull policy")
                    .help(suggest(p, PULL.iter().copied(), |all| {
                        format!("pull must be {}", list_names(&all))
                    })),
                );
            }
        }
        let source = r
            .string(block, "source", "\"images/rootfs.tar\"")
            .map(|(s, _)| {
                let joined = self.dir.join(&s);
                std::path::absolute(&joined)
                    .unwrap_or(joined)
                    .display()
                    .to_string()
            });
        let cmd = block
            .attr("cmd")
            .and_then(|a| r.string_list(a, "[\"httpd\", \"-f\"]"));
        let host = self.host_attr(&mut r, block).or(inst.default_host.clone());
        if !r.finish(self.errors) {
            return None;
        }
        let (name, name_loc) = name?;
        let pull = pull.map_or_else(|| "if_missing".to_string(), |p| p.0);
        let mut attrs = Attrs::new();
        attrs.insert("name".into(), Json::from(name.as_str()));
        attrs.insert("pull".into(), Json::from(pull.as_str()));
        if let Some(s) = &source {
            attrs.insert("source".into(), Json::from(s.as_str()));
        }
        if let Some(c) = &cmd {
            attrs.insert("cmd".into(), Json::from(c.clone()));
        }
        let sensitive = self.sensitive_keys(
            block,
            &[
                ("name", &["name"]),
                ("pull", &["pull"]),
                ("source", &["source"]),
                ("cmd", &["cmd"]),
            ],
            inst.each_sensitive,
        );
        let value = obj(vec![
            ("name", Value::from(name.as_str())),
            ("pull", Value::from(pull)),
            ("source", source.map_or(Value::Null, Value::from)),
            (
                "cmd",
                cmd.map_or(Value::Null, |c| {
                    Value::Array(c.into_iter().map(Value::from).collect())
                }),
            ),
            ("host", host.clone().map_or(Value::Null, Value::from)),
        ]);
        let body = DockerBody {
            host,
            attrs,
            sensitive,
            name: (name, name_loc),
        };
        self.push_shared(Kind::Image, inst, body, value)
    }
}
