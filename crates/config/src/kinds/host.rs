//! `host` blocks: machines reached over SSH (no resources of their own).

use super::*;

pub(super) fn eval(s: &mut State<'_>, label: &str) -> bool {
    s.host(label)
}

impl State<'_> {
    /// Evaluates every instance of host block `label` (one without for_each).
    pub(super) fn host(&mut self, label: &str) -> bool {
        self.each_instance(Kind::Host, label, |s, id, key, ctx, _| {
            s.host_instance(id, label, key, ctx)
        })
    }

    /// Evaluates one host instance, `name` being its id (`web` or `web["a"]`, as in
    /// its provider key `host.web["a"]`); its value, or `None` on errors.
    fn host_instance(
        &mut self,
        name: &str,
        label: &str,
        key: Option<&str>,
        ctx: Context<'static>,
    ) -> Option<Value> {
        let block = &self.decls.of(Kind::Host)[label];
        let mut r = Reader::new(ctx);
        let address = r.string(block, "address", "\"10.0.0.5\"");
        let port = block
            .attr("port")
            .map(|_| r.int(block, "port", (1, 65535), "22"));
        let user = r.string(block, "user", "\"deploy\"");
        let identity_file = r
            .string(block, "identity_file", "\"~/.ssh/id_ed25519\"")
            .and_then(|(p, loc)| local_path(&mut r, self.fs, "identity_file", &p, &loc));
        let known_hosts = r
            .string(block, "known_hosts", "\"known_hosts\"")
            .and_then(|(p, loc)| local_path(&mut r, self.fs, "known_hosts", &p, &loc));
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
        let memory = block
            .attr("memory")
            .filter(|a| !r.is_null(a))
            .and_then(|attr| {
                let v = r.value(attr)?;
                match crate::placement::bytes(&v) {
                    Ok(b) => Some(b),
                    Err(e) => {
                        r.errors.push(
                            ConfigError::new(
                                ErrorKind::InvalidValue,
                                format!("invalid \"memory\": {e}"),
                            )
                            .at(&attr.loc, "not a memory size")
                            .help("write the memory tenants may reserve on this host, e.g. `memory = \"8g\"` (units k, m, g, t: binary, as Docker reads them)"),
                        );
                        None
                    }
                }
            });
        if !r.finish(self.errors) {
            return None;
        }
        let (address, _) = address?;
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
            memory,
        };
        let value = obj(vec![
            ("name", Value::from(label)),
            ("key", key.map_or(Value::Null, Value::from)),
            ("instance", Value::from(format!("host.{name}"))),
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
            ("memory", memory.map_or(Value::Null, Value::from)),
        ]);
        if let Some(attr) = block.attr("memory").filter(|_| spec.memory.is_some()) {
            self.out.host_memory.insert(name.to_string(), attr.loc.clone());
        }
        self.out.hosts.insert(name.to_string(), spec);
        self.host_values.insert(name.to_string(), value.clone());
        Some(value)
    }
}

/// A local path (`identity_file`, `known_hosts`) made absolute: `~/` is `$HOME`,
/// relative paths resolve against the configuration directory.
fn local_path(r: &mut Reader, fs: Fs<'_>, key: &str, p: &str, loc: &Loc) -> Option<String> {
    let home_rel = if p == "~" {
        Some("")
    } else {
        p.strip_prefix("~/")
    };
    let path = match home_rel {
        Some(rest) => match fs.env.home() {
            Some(home) => home.join(rest),
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
        None => fs.dir.join(p),
    };
    Some(
        std::path::absolute(&path)
            .unwrap_or(path)
            .display()
            .to_string(),
    )
}
