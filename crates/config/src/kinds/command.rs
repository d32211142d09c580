//! `command` blocks: a command run once on a host (`host_command`).

use super::decode::Decoded;
use super::hosted::*;
use super::*;

pub(super) fn eval(s: &mut State<'_>, label: &str) -> bool {
    s.hosted(label, &DEF)
}

static DEF: HostedDef = HostedDef {
    kind: Kind::Command,
    own: &[],
    body,
};

fn body(s: &mut State<'_>, r: &mut Reader, inst: &Instance, d: Decoded) -> Option<Body> {
    let block = inst.block;
    if let (Some(Json::String(c)), Some(attr)) = (d.attrs.get("command"), block.attr("command")) {
        if c.trim().is_empty() {
            r.errors.push(
                ConfigError::new(ErrorKind::InvalidValue, "the command is empty")
                    .at(&attr.loc, "empty")
                    .help("write the shell command to run, e.g. command = \"mkswap /swapfile\""),
            );
        }
    }
    if let (Some(Json::String(c)), Some(attr)) = (d.attrs.get("creates"), block.attr("creates")) {
        if let Err(why) = remote_path(c) {
            r.errors.push(
                ConfigError::new(
                    ErrorKind::InvalidValue,
                    format!("invalid creates \"{}\": {why}", c.escape_debug()),
                )
                .at(&attr.loc, why)
                .help("`creates` is the absolute path of a file the command makes; the command is skipped while it exists"),
            );
        }
    }
    d.attrs.get("command")?;
    plain_body(s, r, inst, d)
}
