//! `image` blocks: a Docker image (`docker_image`), pulled or built from a tarball.

use super::decode::Decoded;
use super::docker::*;
use super::*;

pub(super) fn eval(s: &mut State<'_>, label: &str) -> bool {
    s.top_level(label, Kind::Image, State::image_body)
}

impl State<'_> {
    pub(super) fn image_body(&mut self, block: &RawBlock, inst: Instance) -> Option<Value> {
        let mut r = Reader::new(inst.ctx.clone());
        let schema = self.resource_schema(Kind::Image);
        let d = self.decode(&mut r, block, schema, &["name", "source"], &inst.address, inst.each_sensitive);
        let Decoded {
            mut attrs,
            mut sensitive,
        } = d;
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
        let source = r
            .string(block, "source", "\"images/rootfs.tar\"")
            .map(|(s, _)| {
                let joined = self.fs.dir.join(&s);
                std::path::absolute(&joined)
                    .unwrap_or(joined)
                    .display()
                    .to_string()
            });
        let host = self.host_attr(&mut r, block).or(inst.default_host.clone());
        if !r.finish(self.errors) {
            return None;
        }
        let (name, name_loc) = name?;
        attrs.insert("name".into(), Json::from(name.as_str()));
        attrs
            .entry("pull".to_string())
            .or_insert_with(|| Json::from("if_missing"));
        if let Some(s) = &source {
            attrs.insert("source".into(), Json::from(s.as_str()));
        }
        sensitive.extend(self.sensitive_keys(
            block,
            &[("name", &["name"]), ("source", &["source"])],
            inst.each_sensitive,
        ));
        let value = object_value(schema, &attrs, host.as_deref());
        let body = DockerBody {
            host,
            attrs,
            sensitive,
            name: (name, name_loc),
        };
        self.push_shared(Kind::Image, inst, body, value)
    }
}
