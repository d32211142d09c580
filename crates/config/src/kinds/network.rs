//! `network` blocks: a Docker network (`docker_network`).

use serde_json::Value as Json;
use terrace_provider::Attrs;

use super::docker::*;
use super::*;

impl State<'_> {
    pub(super) fn network(&mut self, label: &str) -> bool {
        self.top_level(label, Kind::Network, Self::network_body)
    }

    pub(super) fn network_body(&mut self, block: &RawBlock, inst: Instance) -> Option<Value> {
        let mut r = Reader::new(inst.ctx.clone());
        let name = self.docker_name(&mut r, block, "network", &inst.default_name, "\"farm\"");
        let driver = r.string(block, "driver", "\"bridge\"").map(|d| d.0);
        let internal = r.bool(block, "internal");
        let host = self.host_attr(&mut r, block).or(inst.default_host.clone());
        if !r.finish(self.errors) {
            return None;
        }
        let (name, name_loc) = name?;
        let mut attrs = Attrs::new();
        attrs.insert("name".into(), Json::from(name.as_str()));
        if let Some(d) = &driver {
            attrs.insert("driver".into(), Json::from(d.as_str()));
        }
        if let Some(i) = internal {
            attrs.insert("internal".into(), Json::Bool(i));
        }
        let sensitive = self.sensitive_keys(
            block,
            &[("name", &["name"]), ("driver", &["driver"])],
            inst.each_sensitive,
        );
        let value = obj(vec![
            ("name", Value::from(name.as_str())),
            ("driver", driver.map_or(Value::Null, Value::from)),
            ("internal", internal.map_or(Value::Null, Value::Bool)),
            ("host", host.clone().map_or(Value::Null, Value::from)),
        ]);
        let body = DockerBody {
            host,
            attrs,
            sensitive,
            name: (name, name_loc),
        };
        self.push_shared(Kind::Network, inst, body, value)
    }
}
