//! `host` blocks: machines reached over SSH (no resources of their own).

use super::*;

impl State<'_> {
    pub(super) fn host(&mut self, name: &str) -> bool {
        let block = &self.decls.of(Kind::Host)[name];
        let mut r = Reader::new(self.ctx());
        let address = r.string(block, "address", "\"10.0.0.5\"");
        let port = block
            .attr("port")
            .map(|_| r.int(block, "port", (1, 65535), "22"));
        let user = r.string(block, "user", "\"deploy\"");
        let identity_file = r
            .string(block, "identity_file", "\"~/.ssh/id_ed25519\"")
            .and_then(|(p, loc)| local_path(&mut r, self.dir, "identity_file", &p, &loc));
        let known_hosts = r
            .string(block, "known_hosts", "\"known_hosts\"")
            .and_then(|(p, loc)| local_path(&mut r, self.dir, "known_hosts", &p, &loc));
        let host_key_check = r
            .string(block, "host_key_check", "\"strict\"")
            .and_then(|(v, loc)| {
                let parsed = HostKeyCheck::ALL.into_iter().find(|x| x.as_str() == v);
                if parsed.is_none() {
                    let allowed = HostKeyCheck::ALL.map(HostKeyCheck::as_str);
                    r.errors.push(
                        ConfigError::new(
                            ErrorKind::InvalidValue,
                            format!("unknown host_key_check \"{}\"", v.escape_debug()),
                        )
                        .at(&loc, "not a host key policy")
                        .help(suggest(&v, allowed, |all| {
                            format!(
                                "host_key_check must be {} (\"strict\" refuses unknown host keys; \"accept-new\" records them on first contact)",
                                list_names(&all)
                            )
                        })),
                    );
                }
                parsed
            });
        let become_root = r.bool(block, "become");
        let docker_example = "{ socket = \"/var/run/docker.sock\" }";
        let docker_socket = block.attr("docker").and_then(|attr| {
            let map = r.object(attr, &["socket"], &[], docker_example)?;
            match map.get("socket") {
                Some(v) => r.string_of(
                    attr,
                    &field_loc(attr, "socket"),
                    "socket",
                    v,
                    docker_example,
                ),
                None => None,
            }
        });
        if !r.finish(self.errors) {
            return false;
        }
        let Some((address, _)) = address else {
            return false;
        };
        let spec = HostSpec {
            name: name.to_string(),
            address,
            port: port.flatten().unwrap_or(22) as u16,
            user: user.map_or_else(|| "root".to_string(), |u| u.0),
            identity_file,
            known_hosts,
            host_key_check: host_key_check.unwrap_or_default(),
            become_root: become_root.unwrap_or(false),
            docker_socket,
        };
        let value = obj(vec![
            ("name", Value::from(name)),
            ("address", Value::from(spec.address.as_str())),
            ("port", Value::from(spec.port)),
            ("user", Value::from(spec.user.as_str())),
            (
                "identity_file",
                spec.identity_file.clone().map_or(Value::Null, Value::from),
            ),
            (
                "known_hosts",
                spec.known_hosts.clone().map_or(Value::Null, Value::from),
            ),
            ("host_key_check", Value::from(spec.host_key_check.as_str())),
            ("become", Value::Bool(spec.become_root)),
            (
                "docker",
                match &spec.docker_socket {
                    Some(s) => obj(vec![("socket", Value::from(s.as_str()))]),
                    None => Value::Null,
                },
            ),
        ]);
        self.ns.declare(Kind::Host, name, value);
        self.out.hosts.insert(name.to_string(), spec);
        true
    }
}

/// A local path (`identity_file`, `known_hosts`) made absolute: `~/` is `$HOME`,
/// relative paths resolve against the configuration directory.
fn local_path(r: &mut Reader, dir: &Path, key: &str, p: &str, loc: &Loc) -> Option<String> {
    let home_rel = if p == "~" {
        Some("")
    } else {
        p.strip_prefix("~/")
    };
    let path = match home_rel {
        Some(rest) => match std::env::var_os("HOME").filter(|h| !h.is_empty()) {
            Some(home) => std::path::PathBuf::from(home).join(rest),
            None => {
                r.errors.push(
                    ConfigError::new(
                        ErrorKind::InvalidValue,
                        format!("cannot expand \"~\" in \"{key}\": HOME is not set"),
                    )
                    .at(loc, "needs $HOME")
                    .help(format!("write an absolute path, or set HOME, for `{key}`")),
                );
                return None;
            }
        },
        None if p.starts_with('~') => {
            r.errors.push(
                ConfigError::new(
                    ErrorKind::InvalidValue,
                    format!("unsupported path \"{}\" in \"{key}\"", p.escape_debug()),
                )
                .at(loc, "`~user` is not expanded")
                .help("write `~/...` for your home directory, an absolute path, or a path relative to the configuration directory"),
            );
            return None;
        }
        None => dir.join(p),
    };
    Some(
        std::path::absolute(&path)
            .unwrap_or(path)
            .display()
            .to_string(),
    )
}
