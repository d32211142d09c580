//! `command` blocks: a command run once on a host (`host_command`): the decoded
//! attributes are the whole resource.

use super::hosted::*;
use super::*;

pub(super) fn eval(s: &mut State<'_>, label: &str) -> bool {
    s.hosted(label, &DEF)
}

static DEF: HostedDef = HostedDef {
    kind: Kind::Command,
    own: &[],
    body: plain_body,
};
