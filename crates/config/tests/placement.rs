//! `for_each` on hosts and services, and tenants placed on hosts: explicitly or by a
//! placement rule that fills hosts by memory, stable across changes.
mod common;

use std::collections::BTreeMap;

use common::{render, Dir};
use terrace_config::{Placement, Project, VarInputs};

/// A farm: `hosts` web hosts of `mem` each, a MariaDB container per host, and the
/// tenants `sites` (key → app memory) placed by `strategy`.
fn farm(hosts: &[&str], mem: &str, sites: &[(&str, &str)], strategy: &str) -> String {
    let hosts: Vec<String> = hosts
        .iter()
        .map(|h| format!("{h} = \"10.0.0.{}\"", h.len()))
        .collect();
    let sites: Vec<String> = sites
        .iter()
        .map(|(k, m)| format!("{k} = \"{m}\""))
        .collect();
    format!(
        r#"
variable "hosts" {{
  default = {{ {hosts} }}
}}
variable "sites" {{
  default = {{ {sites} }}
}}
host "web" {{
  for_each = var.hosts
  address  = each.value
  memory   = "{mem}"
  docker   = {{ socket = "/var/run/docker.sock" }}
}}
service "db" {{
  for_each = host.web
  host     = each.value
  engine   = "mariadb"
  endpoint = {{ address = "127.0.0.1", port = 3306 }}
  admin    = {{ user = "root", password = "pw" }}
  container {{
    image  = "terrace/mariadb:1"
    memory = "512m"
  }}
}}
tenant "site" {{
  for_each = var.sites
  placement {{
    hosts    = host.web
    strategy = "{strategy}"
  }}
  database {{
    service = service.db[self.host.key]
    name    = "wp_${{each.key}}"
  }}
  app {{
    image  = "terrace/busybox:1"
    memory = each.value
    env    = {{ DB_HOST = self.host.address, DB_NAME = self.database.name }}
  }}
}}
"#,
        hosts = hosts.join(", "),
        sites = sites.join(", ")
    )
}

fn load(text: &str, prior: &[(&str, &str)]) -> Project {
    let inputs = VarInputs {
        placements: prior
            .iter()
            .map(|(t, h)| (t.to_string(), h.to_string()))
            .collect(),
        ..VarInputs::default()
    };
    match Dir::new(&[("main.hcl", text)]).load(&inputs) {
        Ok(p) => p,
        Err(e) => panic!("unexpected errors:\n{}", render(&e)),
    }
}

/// Tenant instance → host address.
fn placed(p: &Project) -> BTreeMap<String, String> {
    p.placements
        .iter()
        .map(|Placement { instance, host, .. }| (instance.clone(), host.clone()))
        .collect()
}

fn provider_of(p: &Project, address: &str) -> String {
    let r = p
        .resources
        .iter()
        .find(|r| r.address.as_str() == address)
        .unwrap_or_else(|| panic!("no {address}"));
    r.provider.0.clone()
}

#[test]
fn hosts_and_services_with_for_each_are_one_provider_per_instance() {
    let p = load(&farm(&["a", "bb"], "2g", &[("x", "256m")], "fill"), &[]);
    assert_eq!(
        p.hosts.keys().collect::<Vec<_>>(),
        [r#"web["a"]"#, r#"web["bb"]"#]
    );
    assert_eq!(p.hosts[r#"web["bb"]"#].address, "10.0.0.2");
    assert_eq!(p.hosts[r#"web["a"]"#].memory, Some(2 << 30));
    assert_eq!(
        p.services.keys().collect::<Vec<_>>(),
        [r#"db["a"]"#, r#"db["bb"]"#]
    );
    let db_b = &p.services[r#"db["bb"]"#];
    assert_eq!(db_b.host.as_deref(), Some(r#"web["bb"]"#));
    assert_eq!(
        db_b.container.as_ref().map(|a| a.as_str()),
        Some(r#"service.db["bb"].container"#)
    );
    assert_eq!(
        provider_of(&p, r#"service.db["bb"].container"#),
        r#"docker.web["bb"]"#
    );
    let c = p
        .resources
        .iter()
        .find(|r| r.address.as_str() == r#"service.db["a"].container"#)
        .unwrap();
    assert_eq!(c.attrs["name"], "db-a", "default names take the key");
    assert!(p.docker_engines.contains_key(r#"docker.web["a"]"#));
}

#[test]
fn a_rule_fills_hosts_in_key_order_and_the_app_and_database_follow() {
    // 2 GiB hosts with a 512 MiB database each: 1.5 GiB for tenants.
    let sites = [("s1", "1g"), ("s2", "512m"), ("s3", "512m"), ("s4", "1g")];
    let p = load(&farm(&["a", "bb"], "2g", &sites, "fill"), &[]);
    let want: BTreeMap<String, String> = [
        (r#"tenant.site["s1"]"#, r#"host.web["a"]"#),
        (r#"tenant.site["s2"]"#, r#"host.web["a"]"#),
        (r#"tenant.site["s3"]"#, r#"host.web["bb"]"#),
        (r#"tenant.site["s4"]"#, r#"host.web["bb"]"#),
    ]
    .into_iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect();
    assert_eq!(placed(&p), want);
    assert!(p.placements.iter().all(|x| x.by_rule));
    assert_eq!(
        provider_of(&p, r#"tenant.site["s3"].app"#),
        r#"docker.web["bb"]"#
    );
    assert_eq!(
        provider_of(&p, r#"tenant.site["s3"].database"#),
        r#"service.db["bb"]"#
    );
    let app = p
        .resources
        .iter()
        .find(|r| r.address.as_str() == r#"tenant.site["s3"].app"#)
        .unwrap();
    assert_eq!(
        app.attrs["env"]["DB_HOST"], "10.0.0.2",
        "self.host in the app"
    );
}

#[test]
fn spread_places_each_new_tenant_on_the_emptiest_host() {
    let sites = [("s1", "256m"), ("s2", "256m"), ("s3", "256m")];
    let p = load(&farm(&["a", "bb"], "2g", &sites, "spread"), &[]);
    let hosts: Vec<String> = placed(&p).into_values().collect();
    assert_eq!(
        hosts,
        [r#"host.web["a"]"#, r#"host.web["bb"]"#, r#"host.web["a"]"#]
    );
}

#[test]
fn recorded_placements_stay_when_hosts_and_tenants_are_added() {
    let sites = [("s1", "1g"), ("s2", "512m")];
    let first = load(&farm(&["a"], "2g", &sites, "fill"), &[]);
    let prior: Vec<(String, String)> = placed(&first).into_iter().collect();
    let prior: Vec<(&str, &str)> = prior
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    // A new host that sorts first, spread (which would prefer the empty host), and a
    // new tenant whose key sorts before the others: nobody already placed moves.
    let sites = [("s0", "256m"), ("s1", "1g"), ("s2", "512m")];
    let next = load(&farm(&["0", "a"], "2g", &sites, "spread"), &prior);
    let now = placed(&next);
    assert_eq!(now[r#"tenant.site["s1"]"#], r#"host.web["a"]"#);
    assert_eq!(now[r#"tenant.site["s2"]"#], r#"host.web["a"]"#);
    assert_eq!(now[r#"tenant.site["s0"]"#], r#"host.web["0"]"#);
}

#[test]
fn an_explicit_host_moves_a_tenant_and_pins_it() {
    let text = farm(
        &["a", "bb"],
        "2g",
        &[("s1", "256m"), ("s2", "256m")],
        "fill",
    )
    .replace(
        "  placement {",
        "  host = each.key == \"s1\" ? host.web[\"bb\"] : null\n  placement {",
    );
    let p = load(&text, &[(r#"tenant.site["s1"]"#, r#"host.web["a"]"#)]);
    let s1 = p
        .placements
        .iter()
        .find(|x| x.instance == r#"tenant.site["s1"]"#)
        .unwrap();
    assert_eq!(s1.host, r#"host.web["bb"]"#);
    assert!(!s1.by_rule);
    assert_eq!(
        provider_of(&p, r#"tenant.site["s1"].app"#),
        r#"docker.web["bb"]"#
    );
    assert_eq!(placed(&p)[r#"tenant.site["s2"]"#], r#"host.web["a"]"#);
}

#[test]
fn configurations_without_placement_record_none() {
    let p = common::load(&[("main.hcl", common::PG)]);
    assert!(p.placements.is_empty());
}
