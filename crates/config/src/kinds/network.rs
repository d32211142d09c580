//! `network` blocks: a Docker network (`docker_network`).

use super::*;

pub(super) fn eval(s: &mut State<'_>, label: &str) -> bool {
    s.top_level(label, Kind::Network, |s, block, inst| {
        s.docker_object(Kind::Network, block, inst, "\"farm\"")
    })
}
