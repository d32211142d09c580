//! Name and port clashes found at plan time, from the engine's list of containers
//! (observe's, or one made for the check when observe needed none): a container is
//! never destroyed for a replacement that could not start.

use std::collections::BTreeSet;

use terrace_provider::{Address, Attrs, PlanProblem, PlannedChange, Value};

use crate::normalize::parse_canonical_port;
use crate::schema::{CONTAINER, IMAGE, NETWORK, VOLUME};

/// One container on the engine, as the batched list reported it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Holder {
    /// Full id.
    pub id: String,
    /// Name, without the leading `/`.
    pub name: String,
    /// Carries `terrace.managed=true`.
    pub managed: bool,
    /// Its `terrace.address` label, if any.
    pub address: Option<String>,
    /// Published host ports of a running (or paused) container: (host address, host port,
    /// protocol). A stopped container holds none.
    pub ports: Vec<(String, u16, String)>,
}

impl Holder {
    fn short_id(&self) -> &str {
        &self.id[..self.id.len().min(12)]
    }

    /// `container "x" (id …, not created by terrace…)`: who holds something.
    fn describe(&self) -> String {
        self.describe_as("container")
    }

    /// Like [`Holder::describe`], for a `kind` of object.
    fn describe_as(&self, kind: &str) -> String {
        let owner = match (&self.managed, &self.address) {
            (true, Some(a)) => format!("managed by terrace as {a}"),
            (true, None) => "created by terrace".to_string(),
            (false, _) => "not created by terrace: it has no terrace labels".to_string(),
        };
        if self.id == self.name {
            // Volumes have no id apart from their name.
            format!("{kind} {:?} ({owner})", self.name)
        } else {
            format!("{kind} {:?} (id {}, {owner})", self.name, self.short_id())
        }
    }
}

/// Every container, network and volume on one engine at the last observe (networks
/// and volumes only when observe listed them).
#[derive(Debug, Clone, Default)]
pub(crate) struct EngineView {
    /// `None`: not listed yet (observe found every container by its recorded id);
    /// [`needs_containers`] says when a plan must list them.
    pub containers: Option<Vec<Holder>>,
    pub networks: Vec<Holder>,
    pub volumes: Vec<Holder>,
    /// Every local image's tags and digests (`None`: images were not listed).
    pub images: Option<BTreeSet<String>>,
}

fn str_attr<'a>(a: Option<&'a Attrs>, key: &str) -> Option<&'a str> {
    a?.get(key).and_then(Value::as_str)
}

fn bool_attr(a: Option<&Attrs>, key: &str, default: bool) -> bool {
    a.and_then(|a| a.get(key))
        .and_then(Value::as_bool)
        .unwrap_or(default)
}

/// Whether two host addresses overlap: the wildcard addresses overlap everything.
fn same_address(a: &str, b: &str) -> bool {
    let any = |x: &str| matches!(x, "" | "0.0.0.0" | "::");
    any(a) || any(b) || a == b
}

/// Quotes a word for a POSIX shell so that a hint can be pasted as is.
fn shell_quote(s: &str) -> String {
    let plain = s
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "_-./@:=".contains(c));
    if plain && !s.is_empty() {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// Whether a container change takes a name: it is created or renamed.
fn takes_name(c: &PlannedChange, after: &Attrs) -> bool {
    c.creates || str_attr(c.before.as_ref(), "name") != str_attr(Some(after), "name")
}

/// Whether a container change starts a container, which then takes its host ports.
fn starts(c: &PlannedChange, after: &Attrs) -> bool {
    bool_attr(Some(after), "running", true)
        && (c.creates || !bool_attr(c.before.as_ref(), "running", true))
}

/// Whether checking `changes` needs every container of the engine: a container takes
/// a name or starts (its name and host ports must be free).
pub(crate) fn needs_containers(changes: &[PlannedChange]) -> bool {
    changes.iter().any(|c| {
        c.type_name == CONTAINER
            && c.after
                .as_ref()
                .is_some_and(|after| takes_name(c, after) || starts(c, after))
    })
}

/// Whether checking `changes` needs the engine's images: a container is created.
pub(crate) fn needs_images(changes: &[PlannedChange]) -> bool {
    changes
        .iter()
        .any(|c| c.type_name == CONTAINER && c.creates)
}

/// The problems of the container changes in `changes`; `view.containers` must have
/// been listed if [`needs_containers`] says so.
pub(crate) fn check(view: &EngineView, changes: &[PlannedChange]) -> Vec<PlanProblem> {
    let containers = view.containers.as_deref().unwrap_or_default();
    // Containers this plan removes first (the destroy phase runs before any create):
    // what they hold is free by the time the new ones start.
    let destroyed = || {
        changes
            .iter()
            .filter(|c| c.destroys && c.type_name == CONTAINER)
    };
    let going: BTreeSet<&str> = destroyed().map(|c| c.address.as_str()).collect();
    let going_ids: BTreeSet<&str> = destroyed()
        .filter_map(|c| str_attr(c.before.as_ref(), "id"))
        .collect();
    let leaves = |h: &Holder| {
        going_ids.contains(h.id.as_str())
            || (h.managed && h.address.as_deref().is_some_and(|a| going.contains(a)))
    };
    let mut claimed: Vec<(String, u16, String, &Address)> = Vec::new();
    let mut out = names_of_networks_and_volumes(view, changes);
    for c in changes.iter().filter(|c| c.type_name == CONTAINER) {
        let Some(after) = c.after.as_ref() else {
            continue;
        };
        // The object this change works on in place, if it stays.
        let itself = |h: &Holder| {
            !c.creates
                && (Some(h.id.as_str()) == str_attr(c.before.as_ref(), "id")
                    || (h.managed
                        && (h.address.as_deref() == Some(c.address.as_str())
                            || Some(h.name.as_str()) == str_attr(c.before.as_ref(), "name"))))
        };
        let mut problems = Vec::new();

        let name = str_attr(Some(after), "name").unwrap_or_default();
        if takes_name(c, after) {
            if let Some(h) = containers
                .iter()
                .find(|h| h.name == name && !leaves(h) && !itself(h))
            {
                let hint = if h.managed {
                    format!("two resources want the name {name:?}: rename one in the configuration")
                } else {
                    let addr = shell_quote(c.address.as_str());
                    format!(
                        "remove it (`docker rm -f {name}`) or rename it (`docker rename {name} \
                         {name}-old`) and plan again; or adopt it as it is with `terrace import \
                         {addr} {name}` (after `terrace state rm {addr}` if the state still \
                         lists the container it replaced): terrace then knows it by its id, as \
                         Docker cannot add terrace's labels to it"
                    )
                };
                problems.push((
                    format!("the name {name:?} is held by {}", h.describe()),
                    hint,
                    true,
                ));
            }
        }

        // Docker does not pull on create: the image must be there, or be made by an
        // `image` resource of this plan.
        let image = str_attr(Some(after), "image").unwrap_or_default();
        let provided = changes.iter().any(|i| {
            i.type_name == IMAGE && i.creates && str_attr(i.after.as_ref(), "name") == Some(image)
        });
        let missing = view
            .images
            .as_ref()
            .is_some_and(|local| !image.is_empty() && !local.contains(image));
        if c.creates && missing && !provided {
            problems.push((
                format!(
                    "image {image:?} is not on the engine, and nothing in this plan provides it"
                ),
                "declare it in an `image` block (pulled or imported) or load it on the engine; \
                 nothing was changed"
                    .to_string(),
                false,
            ));
        }

        if starts(c, after) {
            let ports = after
                .get("ports")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_str);
            for port in ports {
                let Ok((ip, host, container)) = parse_canonical_port(port) else {
                    continue;
                };
                // No host port: the engine picks a free one.
                let Ok(host) = host.parse::<u16>() else {
                    continue;
                };
                if host == 0 {
                    continue;
                }
                let proto = container
                    .split_once('/')
                    .map_or("tcp", |(_, p)| p)
                    .to_string();
                let holder = containers.iter().find(|h| {
                    !leaves(h)
                        && !itself(h)
                        && h.ports.iter().any(|(hip, hport, hproto)| {
                            *hport == host && *hproto == proto && same_address(hip, &ip)
                        })
                });
                let what = format!("host port {host}/{proto}");
                if let Some(h) = holder {
                    problems.push((
                        format!("{what} is already published by {}", h.describe()),
                        "free the port (stop or reconfigure that container) or choose another \
                         one; nothing was changed, and nothing will be until then"
                            .to_string(),
                        false,
                    ));
                } else if let Some((_, _, _, other)) =
                    claimed.iter().find(|(cip, cport, cproto, _)| {
                        *cport == host && *cproto == proto && same_address(cip, &ip)
                    })
                {
                    problems.push((
                        format!("{what} is also asked for by {other}"),
                        "give each container its own host port".to_string(),
                        false,
                    ));
                } else {
                    claimed.push((ip.clone(), host, proto, &c.address));
                }
            }
        }
        out.extend(
            problems
                .into_iter()
                .map(|(message, hint, identity_taken)| PlanProblem {
                    address: c.address.clone(),
                    message,
                    hint,
                    identity_taken,
                }),
        );
    }
    out
}

/// Networks and volumes to create whose name another object holds: Docker would make a
/// second network of the same name (every container joining it by name then fails), and
/// terrace never adopts a volume it did not make (its data is someone else's).
fn names_of_networks_and_volumes(view: &EngineView, changes: &[PlannedChange]) -> Vec<PlanProblem> {
    let mut out = Vec::new();
    for (kind, type_name, holders) in [
        ("network", NETWORK, &view.networks),
        ("volume", VOLUME, &view.volumes),
    ] {
        let going: BTreeSet<&str> = changes
            .iter()
            .filter(|c| c.destroys && c.type_name == type_name)
            .map(|c| c.address.as_str())
            .collect();
        for c in changes
            .iter()
            .filter(|c| c.creates && c.type_name == type_name)
        {
            let Some(name) = str_attr(c.after.as_ref(), "name") else {
                continue;
            };
            let holder = holders.iter().find(|h| {
                h.name == name
                    && !(h.managed && h.address.as_deref().is_some_and(|a| going.contains(a)))
            });
            let Some(h) = holder else { continue };
            let hint = match kind {
                "network" => format!(
                    "remove it (`docker network rm {name}`) and plan again, or give {} another \
                     name",
                    c.address
                ),
                _ => format!(
                    "terrace never adopts a volume it did not make: keep its content elsewhere \
                     and remove it (`docker volume rm {name}`), or give {} another name",
                    c.address
                ),
            };
            out.push(PlanProblem {
                address: c.address.clone(),
                message: format!("the name {name:?} is held by {}", h.describe_as(kind)),
                hint,
                identity_taken: true,
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn holder(name: &str, managed: bool, address: Option<&str>, port: Option<u16>) -> Holder {
        Holder {
            id: format!("{name}0123456789abcdef"),
            name: name.into(),
            managed,
            address: address.map(str::to_string),
            ports: port
                .map(|p| vec![("0.0.0.0".to_string(), p, "tcp".to_string())])
                .unwrap_or_default(),
        }
    }

    fn change(
        addr: &str,
        before: Option<serde_json::Value>,
        after: serde_json::Value,
    ) -> PlannedChange {
        let attrs = |v: serde_json::Value| serde_json::from_value::<Attrs>(v).unwrap();
        PlannedChange {
            address: Address::new(addr),
            type_name: CONTAINER.into(),
            destroys: before.is_some(),
            creates: true,
            before: before.map(attrs),
            after: Some(attrs(after)),
        }
    }

    #[test]
    fn a_port_held_by_another_container_blocks_a_replacement() {
        let view = EngineView {
            containers: Some(vec![
                holder("proxy", true, Some("c.proxy"), Some(8080)),
                holder("other", false, None, Some(9090)),
            ]),
            ..Default::default()
        };
        let moved = change(
            "c.proxy",
            Some(json!({"name": "proxy", "ports": ["0.0.0.0:8080:80/tcp"]})),
            json!({"name": "proxy", "ports": ["0.0.0.0:9090:80/tcp"]}),
        );
        let problems = check(&view, &[moved]);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(
            problems[0]
                .message
                .contains("host port 9090/tcp is already published by container \"other\""),
            "{}",
            problems[0].message
        );
        // Its own port is free once it is destroyed: replacing in place is fine.
        let same = change(
            "c.proxy",
            Some(json!({"name": "proxy", "ports": ["0.0.0.0:8080:80/tcp"]})),
            json!({"name": "proxy", "ports": ["0.0.0.0:8080:80/tcp"], "memory": 1}),
        );
        assert_eq!(check(&view, &[same]), vec![]);
    }

    #[test]
    fn only_a_change_that_takes_a_name_or_starts_needs_the_engine_s_containers() {
        let update = |before: serde_json::Value, after: serde_json::Value| PlannedChange {
            creates: false,
            destroys: false,
            ..change("c.web", Some(before), after)
        };
        let running = json!({"name": "web", "memory": 1});
        let bigger = json!({"name": "web", "memory": 2});
        let stopped = json!({"name": "web", "memory": 1, "running": false});
        let renamed = json!({"name": "web2", "memory": 1});
        assert!(!needs_containers(&[update(running.clone(), bigger)]));
        assert!(!needs_containers(&[update(
            running.clone(),
            stopped.clone()
        )]));
        assert!(needs_containers(&[update(stopped, running.clone())]));
        assert!(needs_containers(&[update(running.clone(), renamed)]));
        assert!(needs_containers(&[change("c.web", None, running)]));
    }

    #[test]
    fn a_name_held_by_a_container_without_labels_is_named() {
        let view = EngineView {
            containers: Some(vec![holder("web", false, None, None)]),
            ..Default::default()
        };
        let problems = check(&view, &[change("c.web", None, json!({"name": "web"}))]);
        assert_eq!(problems.len(), 1);
        assert!(problems[0].message.contains("no terrace labels"));
        assert!(problems[0].hint.contains("docker rm -f web"));
    }
}
