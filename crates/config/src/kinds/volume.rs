//! `volume` blocks (top level and inside tenants): a Docker volume (`docker_volume`).

use super::docker::*;
use super::*;

pub(super) fn eval(s: &mut State<'_>, label: &str) -> bool {
    s.top_level(label, Kind::Volume, State::volume_body)
}

impl State<'_> {
    /// A top-level volume instance or a tenant's volume.
    pub(super) fn volume_body(&mut self, block: &RawBlock, inst: Instance) -> Option<Value> {
        self.docker_object(Kind::Volume, block, inst, "\"db_data\"")
    }
}
