//! `command` blocks: a command run once on a host (`host_command`).

use serde_json::Value as Json;
use terrace_provider::Attrs;

use super::hosted::*;
use super::*;

impl State<'_> {
    pub(super) fn command_body(&mut self, r: &mut Reader, inst: &Instance) -> Option<Body> {
        let block = inst.block;
        let command = r.string(block, "command", "\"mkswap /swapfile\"");
        if let Some((c, loc)) = &command {
            if c.trim().is_empty() {
                r.errors.push(
                    ConfigError::new(ErrorKind::InvalidValue, "the command is empty")
                        .at(loc, "empty")
                        .help(
                            "write the shell command to run, e.g. command = \"mkswap /swapfile\"",
                        ),
                );
            }
        }
        let creates = r.string(block, "creates", "\"/swapfile\"");
        if let Some((c, loc)) = &creates {
            if let Err(why) = remote_path(c) {
                r.errors.push(
                    ConfigError::new(
                        ErrorKind::InvalidValue,
                        format!("invalid creates \"{}\": {why}", c.escape_debug()),
                    )
                    .at(loc, why)
                    .help("`creates` is the absolute path of a file the command makes; the command is skipped while it exists"),
                );
            }
        }
        let unless = r.string(block, "unless", "\"swapon --show | grep -q swapfile\"");
        let (command, _) = command?;
        let mut attrs = Attrs::new();
        attrs.insert("command".into(), Json::from(command));
        if let Some((c, _)) = creates {
            attrs.insert("creates".into(), Json::from(c));
        }
        if let Some((u, _)) = unless {
            attrs.insert("unless".into(), Json::from(u));
        }
        let sensitive = self.sensitive_of(
            inst,
            &[
                ("command", &["command"]),
                ("creates", &["creates"]),
                ("unless", &["unless"]),
            ],
        );
        Some(Body {
            attrs,
            sensitive,
            identity: None,
            fields: Vec::new(),
            deps: Vec::new(),
        })
    }
}
