//! Containers: lowering of images, networks, volumes, service containers and tenant
//! apps to `docker_*` resources, with exact attributes and dependencies.
mod common;

use std::collections::BTreeSet;

use serde_json::{json, Value};
use terrace_config::{DockerEngineSpec, Engine};
use terrace_provider::{refs, Address, DesiredResource, ProviderKey};

fn res(
    address: &str,
    type_name: &str,
    provider: &str,
    attrs: Value,
    sensitive: &[&str],
    deps: &[&str],
) -> DesiredResource {
    DesiredResource {
        address: Address::new(address),
        type_name: type_name.into(),
        provider: ProviderKey(provider.into()),
        attrs: serde_json::from_value(attrs).unwrap(),
        sensitive_attrs: sensitive.iter().map(|s| s.to_string()).collect(),
        depends_on: deps.iter().map(|d| Address::new(*d)).collect(),
        lifecycle: Default::default(),
    }
}

fn find<'a>(p: &'a terrace_config::Project, address: &str) -> &'a DesiredResource {
    p.resources
        .iter()
        .find(|r| r.address.as_str() == address)
        .unwrap_or_else(|| {
            let all: Vec<&str> = p.resources.iter().map(|r| r.address.as_str()).collect();
            panic!("no resource {address} in {all:?}")
        })
}

const FARM: &str = r#"
variable "db_admin_password" {
  type      = string
  sensitive = true
  default   = "adm1n"
}
variable "clients" { default = { alice = { memory = "128m" }, bob = { memory = "96m" } } }

host "local" {
  address = "127.0.0.1"
  docker  = { socket = "/var/run/docker.sock" }
}

image "busybox" {
  name = "terrace/busybox:1"
  pull = "never"
}
image "mariadb" {
  name = "terrace/mariadb:1"
  pull = "never"
}
network "farm" {}
volume "db_data" {}

service "db" {
  engine   = "mariadb"
  endpoint = { address = "127.0.0.1", port = 33061 }
  admin    = { user = "terrace_admin", password = var.db_admin_password }
  container {
    image    = image.mariadb
    env      = { MARIADB_ADMIN_USER = "terrace_admin", MARIADB_ADMIN_PASSWORD = var.db_admin_password }
    ports    = ["127.0.0.1:33061:3306"]
    networks = [{ name = network.farm.name, aliases = ["db"] }]
    mounts   = [{ source = volume.db_data.name, target = "/var/lib/mysql" }]
    memory   = "512m"
    restart  = "unless-stopped"
  }
}

service "proxy" {
  engine = "container"
  container {
    image    = image.busybox
    command  = ["httpd", "-f", "-p", "80"]
    ports    = ["127.0.0.1:8088:80"]
    networks = [network.farm]
  }
}

tenant "client" {
  for_each = var.clients
  database {
    service = service.db
    name    = "wordpress_${each.key}"
  }
  volume "data" {}
  app {
    image   = image.busybox
    command = ["sleep", "3600"]
    env = {
      DB_HOST     = "db"
      DB_NAME     = self.database.name
      DB_USER     = self.database.user
      DB_PASSWORD = self.database.password
    }
    mounts   = [{ source = self.volume.data.name, target = "/www" }]
    networks = [network.farm]
    memory   = each.value.memory
    domain   = "${each.key}.example.test"
  }
}
"#;

#[test]
fn farm_lowers_exactly() {
    let p = common::load(&[("main.hcl", FARM)]);
    let local = "docker.local";
    let mut expected = vec![
        res(
            "image.busybox",
            "docker_image",
            local,
            json!({"name": "terrace/busybox:1", "pull": "never"}),
            &[],
            &[],
        ),
        res(
            "image.mariadb",
            "docker_image",
            local,
            json!({"name": "terrace/mariadb:1", "pull": "never"}),
            &[],
            &[],
        ),
        res(
            "network.farm",
            "docker_network",
            local,
            json!({"name": "farm"}),
            &[],
            &[],
        ),
        res(
            "service.db.container",
            "docker_container",
            local,
            json!({
                "name": "db",
                "image": "terrace/mariadb:1",
                "env": {"MARIADB_ADMIN_USER": "terrace_admin", "MARIADB_ADMIN_PASSWORD": "adm1n"},
                "ports": ["127.0.0.1:33061:3306"],
                "networks": [{"name": "farm", "aliases": ["db"]}],
                "mounts": [{"source": "db_data", "target": "/var/lib/mysql", "read_only": false}],
                "memory": "512m",
                "restart": "unless-stopped",
            }),
            // Only the password's key is secret: the plan shows the user beside it.
            &["env", r#"env["MARIADB_ADMIN_PASSWORD"]"#],
            &["image.mariadb", "network.farm", "volume.db_data"],
        ),
        res(
            "service.proxy.container",
            "docker_container",
            local,
            json!({
                "name": "proxy",
                "image": "terrace/busybox:1",
                "command": ["httpd", "-f", "-p", "80"],
                "ports": ["127.0.0.1:8088:80"],
                "networks": [{"name": "farm", "aliases": []}],
            }),
            &[],
            &["image.busybox", "network.farm"],
        ),
        res(
            "volume.db_data",
            "docker_volume",
            local,
            json!({"name": "db_data"}),
            &[],
            &[],
        ),
    ];
    for (key, memory) in [("alice", "128m"), ("bob", "96m")] {
        let base = format!("tenant.client[\"{key}\"]");
        let db = format!("{base}.database");
        let user = format!("{db}.user");
        let grant = format!("{db}.grant");
        let volume = format!("{base}.volume[\"data\"]");
        let name = format!("wordpress_{key}");
        let container = format!("client-{key}");
        expected.push(res(
            &format!("{base}.app"),
            "docker_container",
            local,
            json!({
                "name": container,
                "image": "terrace/busybox:1",
                "command": ["sleep", "3600"],
                "env": {
                    "DB_HOST": "db",
                    "DB_NAME": name,
                    "DB_USER": name,
                    "DB_PASSWORD": refs::marker(&Address::new(&user), "password"),
                },
                "labels": {
                    "traefik.enable": "true",
                    format!("traefik.http.routers.{container}.rule"): format!("Host(`{key}.example.test`)"),
                    format!("traefik.http.services.{container}.loadbalancer.server.port"): "80",
                },
                "mounts": [{"source": format!("client_{key}_data"), "target": "/www", "read_only": false}],
                "networks": [{"name": "farm", "aliases": []}],
                "memory": memory,
            }),
            // env holds a marker for a generated password: sensitive, at that key.
            &["env", r#"env["DB_PASSWORD"]"#],
            // Image and network by reference, the volume by name, the database user
            // through the marker, and everything `self.database` refers to.
            &[
                "image.busybox",
                "network.farm",
                &db,
                &grant,
                &user,
                &volume,
            ],
        ));
        expected.push(res(
            &db,
            "sql_database",
            "service.db",
            json!({"name": name, "charset": "utf8mb4"}),
            &[],
            &["service.db.container"],
        ));
        expected.push(res(
            &grant,
            "sql_grant",
            "service.db",
            json!({"database": name, "user": name, "host": "%", "privileges": ["ALL"]}),
            &[],
            &["service.db.container", &db, &user],
        ));
        expected.push(res(
            &user,
            "sql_user",
            "service.db",
            json!({"name": name, "host": "%"}),
            &[],
            &["service.db.container"],
        ));
        expected.push(res(
            &volume,
            "docker_volume",
            local,
            json!({"name": format!("client_{key}_data")}),
            &[],
            &[],
        ));
    }
    expected.sort_by(|a, b| a.address.cmp(&b.address));
    // What a service block owns is protected from destruction by default.
    for r in expected
        .iter_mut()
        .filter(|r| r.address.as_str().starts_with("service."))
    {
        r.lifecycle.prevent_destroy = true;
    }
    assert_eq!(p.resources.len(), expected.len());
    for (got, want) in p.resources.iter().zip(&expected) {
        assert_eq!(got, want);
    }

    let db = &p.services["db"];
    assert_eq!(db.engine, Engine::Mariadb);
    assert!(db.engine.is_sql());
    let sql = db.sql.as_ref().unwrap();
    assert_eq!((sql.address.as_str(), sql.port), ("127.0.0.1", 33061));
    assert_eq!(sql.admin_password.expose(), "adm1n");
    assert_eq!(db.container, Some(Address::new("service.db.container")));
    let proxy = &p.services["proxy"];
    assert_eq!(proxy.engine, Engine::Container);
    assert!(!proxy.engine.is_sql());
    assert_eq!(proxy.sql, None);
    assert_eq!(
        proxy.container,
        Some(Address::new("service.proxy.container"))
    );

    assert_eq!(
        p.hosts["local"].docker_socket.as_deref(),
        Some("/var/run/docker.sock")
    );
    assert_eq!(
        p.docker_engines.values().collect::<Vec<_>>(),
        vec![&DockerEngineSpec {
            key: "docker.local".into(),
            socket: Some("/var/run/docker.sock".into()),
            host: Some("local".into()),
        }]
    );
    let secrets: Vec<&str> = p.secrets.iter().map(|s| s.expose()).collect();
    assert_eq!(secrets, vec!["adm1n"]);
}

#[test]
fn networks_normalise_from_all_three_forms() {
    let p = common::load(&[(
        "main.hcl",
        r#"
network "farm" {}
network "back" { name = "backend" }
service "web" {
  engine = "container"
  container {
    image    = "nginx:1.27"
    networks = [network.farm, "bridge", { name = network.back.name, aliases = ["web", "www"] }, { name = "other" }]
  }
}
"#,
    )]);
    let web = find(&p, "service.web.container");
    assert_eq!(
        web.attrs["networks"],
        json!([
            {"name": "farm", "aliases": []},
            {"name": "bridge", "aliases": []},
            {"name": "backend", "aliases": ["web", "www"]},
            {"name": "other", "aliases": []},
        ])
    );
    // The two declared networks it joins, by reference or by name; no image block.
    assert_eq!(
        web.depends_on,
        vec![Address::new("network.back"), Address::new("network.farm")]
    );
    assert_eq!(web.attrs["image"], json!("nginx:1.27"));
}

#[test]
fn traefik_labels_from_domain_and_port_keep_user_labels() {
    let p = common::load(&[(
        "main.hcl",
        r#"
tenant "shop" {
  app {
    image  = "shop:2"
    labels = { team = "web", "traefik.enable" = "false" }
    domain = "shop.example.test"
    port   = 8080
  }
}
"#,
    )]);
    let app = find(&p, "tenant.shop.app");
    assert_eq!(app.attrs["name"], json!("shop"));
    assert_eq!(
        app.attrs["labels"],
        json!({
            "team": "web",
            "traefik.enable": "false",
            "traefik.http.routers.shop.rule": "Host(`shop.example.test`)",
            "traefik.http.services.shop.loadbalancer.server.port": "8080",
        })
    );
    assert!(app.sensitive_attrs.is_empty());
    assert!(app.depends_on.is_empty());
}

#[test]
fn explicit_password_flows_through_as_a_sensitive_value() {
    let p = common::load(&[
        ("a.hcl", &common::PG.replace("postgres", "mariadb")),
        (
            "main.hcl",
            r#"
tenant "t" {
  for_each = toset(["x"])
  database {
    service  = service.pg
    name     = "t_${each.key}"
    password = "literal-pw"
  }
  app {
    image = "app:1"
    env   = { PW = self.database.password, NAME = self.database.name, N = 3, B = true }
    labels = { db = self.database.name }
  }
}
"#,
        ),
    ]);
    let app = find(&p, "tenant.t[\"x\"].app");
    assert_eq!(
        app.attrs["env"],
        json!({"PW": "literal-pw", "NAME": "t_x", "N": "3", "B": "true"})
    );
    assert_eq!(app.attrs["name"], json!("t-x"));
    assert_eq!(
        app.sensitive_attrs,
        BTreeSet::from(["env".to_string(), r#"env["PW"]"#.to_string()]),
        "labels read no password; env only at the password's key"
    );
    assert!(!refs::contains_marker(&app.attrs["env"]));
    assert!(p.secrets.iter().any(|s| s.expose() == "literal-pw"));
    // It still waits for its database, through `self.database`.
    assert!(app
        .depends_on
        .contains(&Address::new("tenant.t[\"x\"].database.grant")));
}

#[test]
fn password_reference_from_another_block_is_a_marker() {
    let p = common::load(&[
        ("a.hcl", &common::PG.replace("postgres", "mariadb")),
        (
            "main.hcl",
            r#"
database "shop" {
  service = service.pg
  name    = "shop"
}
service "worker" {
  engine = "container"
  container {
    image = "worker:1"
    env   = { DSN = "mysql://shop:${database.shop.password}@db/shop" }
  }
}
"#,
        ),
    ]);
    let w = find(&p, "service.worker.container");
    let dsn = w.attrs["env"]["DSN"].as_str().unwrap();
    assert_eq!(
        refs::find(dsn),
        vec![(Address::new("database.shop.user"), "password".to_string())]
    );
    assert_eq!(
        w.sensitive_attrs,
        BTreeSet::from(["env".to_string(), r#"env["DSN"]"#.to_string()])
    );
    // Via the block reference and the marker.
    assert_eq!(
        w.depends_on,
        vec![
            Address::new("database.shop"),
            Address::new("database.shop.grant"),
            Address::new("database.shop.user"),
        ]
    );
}

#[test]
fn default_names_with_and_without_for_each_and_hosts() {
    let p = common::load(&[(
        "main.hcl",
        r#"
host "h1" {
  address = "10.0.0.7"
  docker  = { socket = "/run/docker.sock" }
}
volume "cache" {
  for_each = toset(["a", "b"])
  host     = host.h1
}
network "net" {
  name     = "custom"
  driver   = "bridge"
  internal = true
}
tenant "solo" {
  volume "data" {}
  app {
    image  = "solo:1"
    host   = host.h1
    mounts = [{ source = self.volume.data, target = "/data", read_only = true }]
  }
}
tenant "multi" {
  for_each = toset(["k1"])
  volume "files" { name = "files_${each.key}" }
  app {
    image = "multi:1"
    name  = "multi_${each.key}_app"
  }
}
"#,
    )]);
    let addrs: Vec<(&str, &str, &str)> = p
        .resources
        .iter()
        .map(|r| {
            (
                r.address.as_str(),
                r.attrs["name"].as_str().unwrap(),
                r.provider.0.as_str(),
            )
        })
        .collect();
    assert_eq!(
        addrs,
        vec![
            ("network.net", "custom", "docker.local"),
            ("tenant.multi[\"k1\"].app", "multi_k1_app", "docker.local"),
            (
                "tenant.multi[\"k1\"].volume[\"files\"]",
                "files_k1",
                "docker.local"
            ),
            ("tenant.solo.app", "solo", "docker.h1"),
            // A tenant's volume lives on its app's engine.
            ("tenant.solo.volume[\"data\"]", "solo_data", "docker.h1"),
            ("volume.cache[\"a\"]", "cache_a", "docker.h1"),
            ("volume.cache[\"b\"]", "cache_b", "docker.h1"),
        ]
    );
    assert_eq!(
        find(&p, "network.net").attrs,
        serde_json::from_value(json!({"name": "custom", "driver": "bridge", "internal": true}))
            .unwrap()
    );
    let solo = find(&p, "tenant.solo.app");
    assert_eq!(
        solo.attrs["mounts"],
        json!([{"source": "solo_data", "target": "/data", "read_only": true}])
    );
    assert_eq!(
        solo.depends_on,
        vec![Address::new("tenant.solo.volume[\"data\"]")]
    );
    assert_eq!(
        p.docker_engines.keys().collect::<Vec<_>>(),
        vec!["docker.h1", "docker.local"]
    );
    assert_eq!(
        p.docker_engines["docker.h1"],
        DockerEngineSpec {
            key: "docker.h1".into(),
            socket: Some("/run/docker.sock".into()),
            host: Some("h1".into()),
        }
    );
    assert_eq!(
        p.docker_engines["docker.local"],
        DockerEngineSpec {
            key: "docker.local".into(),
            socket: None,
            host: None,
        }
    );
}

#[test]
fn image_source_cmd_healthcheck_running_and_image_by_name() {
    let dir = common::Dir::new(&[(
        "main.hcl",
        r#"
image "base" {
  name   = "local/base:1"
  source = "images/rootfs.tar"
  cmd    = ["sh"]
}
service "cache" {
  engine = "redis"
  container {
    image       = "local/base:1"
    running     = false
    memory      = 268435456
    restart     = "on-failure:3"
    healthcheck = { test = ["CMD", "true"], interval = "5s", retries = 3 }
  }
}
"#,
    )]);
    let p = dir.load(&Default::default()).unwrap();
    let image = find(&p, "image.base");
    let source = dir.path("images/rootfs.tar");
    assert!(source.is_absolute());
    assert_eq!(
        image.attrs,
        serde_json::from_value(json!({
            "name": "local/base:1",
            "pull": "if_missing",
            "source": source.display().to_string(),
            "cmd": ["sh"],
        }))
        .unwrap()
    );
    let c = find(&p, "service.cache.container");
    assert_eq!(
        c.attrs,
        serde_json::from_value(json!({
            "name": "cache",
            "image": "local/base:1",
            "running": false,
            "memory": 268435456,
            "restart": "on-failure:3",
            "healthcheck": {"test": ["CMD", "true"], "interval": "5s", "retries": 3},
        }))
        .unwrap()
    );
    // The image is found by its name.
    assert_eq!(c.depends_on, vec![Address::new("image.base")]);
    assert_eq!(p.services["cache"].engine, Engine::Redis);
}

#[test]
fn init_and_stop_settings_lower_as_written() {
    // The provider puts them in canonical form (normalize) and checks them there.
    let p = common::load(&[(
        "main.hcl",
        r#"
tenant "tt" {
  app {
    image        = "site:1"
    init         = true
    stop_signal  = "INT"
    stop_timeout = "1s"
  }
}
"#,
    )]);
    let c = find(&p, "tenant.tt.app");
    assert_eq!(c.attrs["init"], json!(true));
    assert_eq!(c.attrs["stop_signal"], json!("INT"));
    assert_eq!(c.attrs["stop_timeout"], json!("1s"));
}

#[test]
fn a_signal_and_a_stop_timeout_may_be_written_as_numbers() {
    let p = common::load(&[(
        "main.hcl",
        r#"
tenant "tt" {
  app {
    image        = "site:1"
    stop_signal  = 2
    stop_timeout = 5
  }
}
"#,
    )]);
    let c = find(&p, "tenant.tt.app");
    assert_eq!(c.attrs["stop_signal"], json!("2"));
    assert_eq!(c.attrs["stop_timeout"], json!("5s"));
}

#[test]
fn container_and_app_names_are_referenceable() {
    let p = common::load(&[(
        "main.hcl",
        r#"
tenant "site" {
  for_each = toset(["a"])
  app {
    image  = "site:1"
    domain = "a.example.test"
  }
}
service "proxy" {
  engine = "container"
  container {
    image = "proxy:1"
    env   = { BACKEND = tenant.site["a"].app.name }
  }
}
locals {
  proxy_name = service.proxy.container.name
}
service "probe" {
  engine = "container"
  container {
    image   = "probe:1"
    command = ["ping", local.proxy_name]
  }
}
"#,
    )]);
    let proxy = find(&p, "service.proxy.container");
    assert_eq!(proxy.attrs["env"], json!({"BACKEND": "site-a"}));
    assert_eq!(
        proxy.depends_on,
        vec![Address::new("tenant.site[\"a\"].app")]
    );
    let probe = find(&p, "service.probe.container");
    assert_eq!(probe.attrs["command"], json!(["ping", "proxy"]));
}

#[test]
fn self_fields_from_sensitive_variables_stay_sensitive() {
    let p = common::load(&[
        ("a.hcl", common::PG),
        (
            "main.hcl",
            r#"
variable "db_name" {
  sensitive = true
  default   = "hidden_db"
}
tenant "t1" {
  database {
    service = service.pg
    name    = var.db_name
  }
  app {
    image   = "app:1"
    labels  = { user = self.database.user }
    command = ["run", self.database.service]
  }
}
"#,
        ),
    ]);
    let app = find(&p, "tenant.t1.app");
    // The user name defaults to the sensitive name; the service name is not secret.
    assert_eq!(app.sensitive_attrs, BTreeSet::from(["labels".to_string()]));
    assert_eq!(app.attrs["labels"], json!({"user": "hidden_db"}));
    assert_eq!(app.attrs["command"], json!(["run", "pg"]));
}

/// `env` is secret key by key only when each key is written out: a map from a sensitive
/// variable, or a key computed from one, keeps the whole map secret (the plan cannot
/// know which of its values are).
#[test]
fn env_is_secret_per_key_only_when_written_key_by_key() {
    let p = common::load(&[
        ("a.hcl", common::PG),
        (
            "main.hcl",
            r#"
variable "token" {
  sensitive = true
  default   = "t0ken"
}
variable "secret_env" {
  sensitive = true
  default   = { A = "x" }
}
variable "key" {
  sensitive = true
  default   = "K"
}
service "keyed" {
  engine = "container"
  container {
    image = "app:1"
    env   = { API_TOKEN = var.token, "LOG.LEVEL" = "info" }
  }
}
service "whole" {
  engine = "container"
  container {
    image = "app:1"
    env   = var.secret_env
  }
}
service "computed" {
  engine = "container"
  container {
    image = "app:1"
    env   = { (var.key) = "v", PLAIN = "p" }
  }
}
"#,
        ),
    ]);
    let set = |a: &str| find(&p, a).sensitive_attrs.clone();
    assert_eq!(
        set("service.keyed.container"),
        BTreeSet::from(["env".to_string(), r#"env["API_TOKEN"]"#.to_string()])
    );
    assert_eq!(
        set("service.whole.container"),
        BTreeSet::from(["env".to_string()])
    );
    assert_eq!(
        set("service.computed.container"),
        BTreeSet::from(["env".to_string()])
    );
}
