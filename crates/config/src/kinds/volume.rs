//! `volume` blocks (top level and inside tenants): a Docker volume (`docker_volume`).

use serde_json::Value as Json;
use terrace_provider::Attrs;

use super::docker::*;
use super::*;

impl State<'_> {
    pub(super) fn volume(&mut self, label: &str) -> bool {
        self.top_level(label, Kind::Volume, Self::volume_body)
    }

    /// A top-level volume instance or a tenant's volume.
    pub(super) fn volume_body(&mut self, block: &RawBlock, inst: Instance) -> Option<Value> {
        let mut r = Reader::new(inst.ctx.clone());
        let name = self.docker_name(&mut r, block, "volume", &inst.default_name, "\"db_data\"");
        let driver = r.string(block, "driver", "\"local\"").map(|d| d.0);
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
        let sensitive = self.sensitive_keys(
            block,
            &[("name", &["name"]), ("driver", &["driver"])],
            inst.each_sensitive,
        );
        let value = obj(vec![
            ("name", Value::from(name.as_str())),
            ("driver", driver.map_or(Value::Null, Value::from)),
            ("host", host.clone().map_or(Value::Null, Value::from)),
        ]);
        let body = DockerBody {
            host,
            attrs,
            sensitive,
            name: (name, name_loc),
        };
        self.push_shared(Kind::Volume, inst, body, value)
    }
}
