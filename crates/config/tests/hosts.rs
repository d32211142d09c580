//! Hosts over SSH: lowering of files, packages, daemons, firewall rules and commands
//! to `host_*` resources, with exact attributes, dependencies and sensitivity.
mod common;

use common::{render, Dir};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use terrace_config::{HostKeyCheck, Project, VarInputs};
use terrace_provider::{Address, DesiredResource, ProviderKey};

fn res(
    address: &str,
    type_name: &str,
    host: &str,
    attrs: Value,
    sensitive: &[&str],
    deps: &[&str],
) -> DesiredResource {
    DesiredResource {
        address: Address::new(address),
        type_name: type_name.into(),
        provider: ProviderKey(format!("host.{host}")),
        attrs: serde_json::from_value(attrs).unwrap(),
        sensitive_attrs: sensitive.iter().map(|s| s.to_string()).collect(),
        depends_on: deps.iter().map(|d| Address::new(*d)).collect(),
        lifecycle: Default::default(),
    }
}

fn find<'a>(p: &'a Project, address: &str) -> &'a DesiredResource {
    p.resources
        .iter()
        .find(|r| r.address.as_str() == address)
        .unwrap_or_else(|| {
            let all: Vec<&str> = p.resources.iter().map(|r| r.address.as_str()).collect();
            panic!("no resource {address} in {all:?}")
        })
}

fn sha256_hex(data: &[u8]) -> String {
    Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The restart token of files with these contents.
fn token(contents: &[&str]) -> String {
    let mut all = Vec::new();
    for c in contents {
        all.extend_from_slice(c.as_bytes());
        all.push(0);
    }
    sha256_hex(&all)
}

/// A project directory with `main.hcl` and extra files (in subdirectories too).
fn project(main: &str, files: &[(&str, &str)]) -> Dir {
    let dir = Dir::new(&[("main.hcl", main)]);
    for (name, text) in files {
        let path = dir.path(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
    dir
}

fn load(dir: &Dir, inputs: &VarInputs) -> Project {
    match dir.load(inputs) {
        Ok(p) => p,
        Err(e) => panic!("unexpected errors:\n{}", render(&e)),
    }
}

fn var(name: &str, value: &str) -> VarInputs {
    VarInputs {
        vars: vec![(name.into(), value.into())],
        ..VarInputs::default()
    }
}

const SEED: &str = r#"
variable "server_name" { default = "app.example.com" }

host "web1" {
  address        = "10.0.0.10"
  port           = 22
  user           = "deploy"
  identity_file  = "~/.ssh/id_ed25519"
  known_hosts    = "known_hosts"
  host_key_check = "accept-new"
  become         = true
}
host "redis1" {
  address = "10.0.0.20"
  user    = "deploy"
  become  = true
}

package "nginx" { host = host.web1 }
package "redis" {
  host    = host.redis1
  name    = "redis-server"
  state   = "present"
  version = "5:7.0.15-1~deb12u1"
}

file "nginx_site" {
  host   = host.web1
  path   = "/etc/nginx/sites-available/app"
  source = "templates/nginx-site.conf"
  mode   = "0644"
  owner  = "root"
  group  = "root"
}
file "redis_conf" {
  host    = host.redis1
  path    = "/etc/redis/redis.conf"
  content = "bind 0.0.0.0\nprotected-mode yes\n"
  mode    = 640
}

daemon "nginx" {
  host       = host.web1
  name       = "nginx"
  running    = true
  enabled    = true
  restart_on = [file.nginx_site]
  depends_on = [package.nginx]
}
daemon "redis" {
  host       = host.redis1
  name       = "redis-server"
  restart_on = [file.redis_conf]
  depends_on = [package.redis]
}

firewall_rule "redis" {
  host       = host.redis1
  port       = 6379
  proto      = "tcp"
  allow_from = [host.web1.address, "10.0.0.0/24"]
  comment    = "app servers only"
}

command "create_swap" {
  host    = host.web1
  command = "fallocate -l 1G /swapfile && chmod 600 /swapfile && mkswap /swapfile"
  creates = "/swapfile"
  unless  = "swapon --show | grep -q swapfile"
}
"#;

const NGINX_SITE: &str = "server {\n  listen ${host.web1.address}:80;\n  server_name ${var.server_name};\n%{ for p in [\"a\", \"b\"] ~}\n  location /${p} {}\n%{ endfor ~}\n}\n";

fn rendered_site(server_name: &str) -> String {
    format!(
        "server {{\n  listen 10.0.0.10:80;\n  server_name {server_name};\n  location /a {{}}\n  location /b {{}}\n}}\n"
    )
}

#[test]
fn seed_layout_lowers_exactly() {
    let dir = project(SEED, &[("templates/nginx-site.conf", NGINX_SITE)]);
    let p = load(&dir, &VarInputs::default());
    let site = rendered_site("app.example.com");
    let redis_conf = "bind 0.0.0.0\nprotected-mode yes\n";
    let expected = vec![
        res(
            "command.create_swap",
            "host_command",
            "web1",
            json!({
                "command": "fallocate -l 1G /swapfile && chmod 600 /swapfile && mkswap /swapfile",
                "creates": "/swapfile",
                "unless": "swapon --show | grep -q swapfile",
            }),
            &[],
            &[],
        ),
        res(
            "daemon.nginx",
            "host_service",
            "web1",
            json!({"name": "nginx", "running": true, "enabled": true, "restart_on": token(&[&site])}),
            &[],
            &["file.nginx_site", "package.nginx"],
        ),
        res(
            "daemon.redis",
            "host_service",
            "redis1",
            json!({"name": "redis-server", "restart_on": token(&[redis_conf])}),
            &[],
            &["file.redis_conf", "package.redis"],
        ),
        res(
            "file.nginx_site",
            "host_file",
            "web1",
            json!({
                "path": "/etc/nginx/sites-available/app",
                "content": site,
                "mode": "0644",
                "owner": "root",
                "group": "root",
            }),
            &[],
            &[],
        ),
        res(
            "file.redis_conf",
            "host_file",
            "redis1",
            json!({"path": "/etc/redis/redis.conf", "content": redis_conf, "mode": "0640"}),
            &[],
            &[],
        ),
        res(
            "firewall_rule.redis",
            "host_firewall_rule",
            "redis1",
            json!({
                "port": 6379,
                "proto": "tcp",
                "allow_from": ["10.0.0.10", "10.0.0.0/24"],
                "comment": "app servers only",
            }),
            &[],
            &[],
        ),
        res(
            "package.nginx",
            "host_package",
            "web1",
            json!({"name": "nginx"}),
            &[],
            &[],
        ),
        res(
            "package.redis",
            "host_package",
            "redis1",
            json!({"name": "redis-server", "state": "present", "version": "5:7.0.15-1~deb12u1"}),
            &[],
            &[],
        ),
    ];
    assert_eq!(p.resources.len(), expected.len(), "{:#?}", p.resources);
    for (got, want) in p.resources.iter().zip(&expected) {
        assert_eq!(got, want);
    }
    // The token is the hash of the content followed by NUL, hex-encoded.
    assert_eq!(token(&[&site]), sha256_hex(format!("{site}\0").as_bytes()));
    assert!(p.docker_engines.is_empty());

    let web1 = &p.hosts["web1"];
    assert_eq!(
        (
            web1.address.as_str(),
            web1.port,
            web1.user.as_str(),
            web1.become_root
        ),
        ("10.0.0.10", 22, "deploy", true)
    );
    assert_eq!(web1.host_key_check, HostKeyCheck::AcceptNew);
    let redis1 = &p.hosts["redis1"];
    assert_eq!(redis1.host_key_check, HostKeyCheck::Strict);
    assert_eq!(
        (redis1.identity_file.as_ref(), redis1.known_hosts.as_ref()),
        (None, None)
    );
}

#[test]
fn restart_token_follows_the_template_variables() {
    let dir = project(SEED, &[("templates/nginx-site.conf", NGINX_SITE)]);
    let a = load(&dir, &VarInputs::default());
    let b = load(&dir, &var("server_name", "shop.example.com"));
    let (ta, tb) = (
        &find(&a, "daemon.nginx").attrs["restart_on"],
        &find(&b, "daemon.nginx").attrs["restart_on"],
    );
    assert_ne!(ta, tb);
    assert_eq!(tb, &json!(token(&[&rendered_site("shop.example.com")])));
    assert_eq!(
        find(&b, "file.nginx_site").attrs["content"],
        json!(rendered_site("shop.example.com"))
    );
    // Other daemons do not change.
    assert_eq!(
        find(&a, "daemon.redis").attrs["restart_on"],
        find(&b, "daemon.redis").attrs["restart_on"]
    );
}

#[test]
fn identity_file_and_known_hosts_become_absolute() {
    let dir = project(
        r#"
host "a" {
  address       = "10.0.0.1"
  identity_file = "~/.ssh/id_ed25519"
  known_hosts   = "ssh/known_hosts"
}
host "b" {
  address       = "10.0.0.2"
  identity_file = "/etc/terrace/key"
  known_hosts   = "~/.ssh/known_hosts"
}
"#,
        &[],
    );
    let p = load(&dir, &VarInputs::default());
    let home = std::env::var("HOME").expect("tests run with HOME set");
    let home = std::path::Path::new(&home);
    let a = &p.hosts["a"];
    assert_eq!(
        a.identity_file.as_deref(),
        Some(home.join(".ssh/id_ed25519").to_str().unwrap())
    );
    assert_eq!(
        a.known_hosts.as_deref(),
        Some(dir.path("ssh/known_hosts").to_str().unwrap())
    );
    let b = &p.hosts["b"];
    assert_eq!(b.identity_file.as_deref(), Some("/etc/terrace/key"));
    assert_eq!(
        b.known_hosts.as_deref(),
        Some(home.join(".ssh/known_hosts").to_str().unwrap())
    );
    assert!(std::path::Path::new(a.known_hosts.as_deref().unwrap()).is_absolute());
}

#[test]
fn for_each_packages_and_instance_references() {
    let dir = project(
        r#"
variable "packages" { default = ["curl", "htop"] }
host "web1" { address = "10.0.0.10" }
package "tools" {
  for_each = toset(var.packages)
  host     = host.web1
  name     = each.key
}
file "conf" {
  for_each = { a = "one", b = "two" }
  host     = host.web1
  path     = "/etc/app/${each.key}.conf"
  content  = "value=${each.value}\n"
}
daemon "app" {
  host       = host.web1
  restart_on = [file.conf["b"], file.conf["a"]]
  depends_on = [package.tools["htop"]]
}
daemon "all" {
  host       = host.web1
  name       = "app-all"
  restart_on = [file.conf]
  depends_on = [package.tools, command.setup]
}
command "setup" {
  host       = host.web1
  command    = "true"
  depends_on = [file.conf["a"]]
}
"#,
        &[],
    );
    let p = load(&dir, &VarInputs::default());
    for key in ["curl", "htop"] {
        assert_eq!(
            find(&p, &format!("package.tools[\"{key}\"]")),
            &res(
                &format!("package.tools[\"{key}\"]"),
                "host_package",
                "web1",
                json!({"name": key}),
                &[],
                &[]
            )
        );
    }
    assert_eq!(
        find(&p, "file.conf[\"b\"]").attrs["path"],
        json!("/etc/app/b.conf")
    );
    // In list order: b then a.
    assert_eq!(
        find(&p, "daemon.app"),
        &res(
            "daemon.app",
            "host_service",
            "web1",
            json!({"name": "app", "restart_on": token(&["value=two\n", "value=one\n"])}),
            &[],
            &[
                "file.conf[\"a\"]",
                "file.conf[\"b\"]",
                "package.tools[\"htop\"]"
            ],
        )
    );
    // A for_each block stands for all its instances.
    assert_eq!(
        find(&p, "daemon.all"),
        &res(
            "daemon.all",
            "host_service",
            "web1",
            json!({"name": "app-all", "restart_on": token(&["value=one\n", "value=two\n"])}),
            &[],
            &[
                "command.setup",
                "file.conf[\"a\"]",
                "file.conf[\"b\"]",
                "package.tools[\"curl\"]",
                "package.tools[\"htop\"]",
            ],
        )
    );
    assert_eq!(
        find(&p, "command.setup").depends_on,
        vec![Address::new("file.conf[\"a\"]")]
    );
}

#[test]
fn templates_see_each_and_locals_with_a_path_from_each() {
    let dir = project(
        r#"
locals { port = 8080 }
host "web1" { address = "10.0.0.10" }
file "site" {
  for_each = toset(["a", "b"])
  host     = host.web1
  path     = "/etc/nginx/sites-available/${each.key}"
  source   = "templates/${each.key}.conf"
}
"#,
        &[
            (
                "templates/a.conf",
                "a on ${host.web1.address}:${local.port}\n",
            ),
            ("templates/b.conf", "b is ${each.key}\n"),
        ],
    );
    let p = load(&dir, &VarInputs::default());
    assert_eq!(
        find(&p, "file.site[\"a\"]").attrs["content"],
        json!("a on 10.0.0.10:8080\n")
    );
    assert_eq!(
        find(&p, "file.site[\"b\"]").attrs["content"],
        json!("b is b\n")
    );
}

const SECRET_FILES: &str = r#"
variable "redis_password" {
  type      = string
  sensitive = true
  default   = "s3cretpw"
}
variable "plain" { default = "x" }
host "redis1" { address = "10.0.0.20" }
file "inline" {
  host    = host.redis1
  path    = "/etc/redis/auth.conf"
  content = "requirepass ${var.redis_password}\n"
}
file "templated" {
  host   = host.redis1
  path   = "/etc/redis/redis.conf"
  source = "redis.conf.tpl"
}
file "plain" {
  host   = host.redis1
  path   = "/etc/redis/plain.conf"
  source = "plain.tpl"
}
daemon "redis" {
  host       = host.redis1
  name       = "redis-server"
  restart_on = [file.templated]
}
daemon "other" {
  host       = host.redis1
  restart_on = [file.plain]
}
"#;

#[test]
fn content_from_a_sensitive_variable_is_sensitive() {
    let dir = project(
        SECRET_FILES,
        &[
            (
                "redis.conf.tpl",
                "bind 0.0.0.0\nrequirepass ${var.redis_password}\n",
            ),
            ("plain.tpl", "x=${var.plain}\n"),
        ],
    );
    let p = load(&dir, &VarInputs::default());
    let inline = find(&p, "file.inline");
    assert_eq!(inline.attrs["content"], json!("requirepass s3cretpw\n"));
    assert!(inline.sensitive_attrs.contains("content"));
    assert!(!inline.sensitive_attrs.contains("path"));
    let templated = find(&p, "file.templated");
    assert_eq!(
        templated.attrs["content"],
        json!("bind 0.0.0.0\nrequirepass s3cretpw\n")
    );
    assert!(templated.sensitive_attrs.contains("content"));
    // The hash of secret content is kept out of plans too.
    assert!(find(&p, "daemon.redis")
        .sensitive_attrs
        .contains("restart_on"));
    // A template without sensitive references stays plain.
    assert!(find(&p, "file.plain").sensitive_attrs.is_empty());
    assert!(find(&p, "daemon.other").sensitive_attrs.is_empty());
    assert!(p.secrets.iter().any(|s| s.expose() == "s3cretpw"));
}

#[test]
fn references_to_host_blocks_evaluate() {
    let dir = project(
        r#"
host "web1" { address = "10.0.0.10" }
package "nginx" { host = host.web1 }
file "a" {
  host    = host.web1
  path    = "/etc/a"
  content = "pkg=${package.nginx.name} host=${package.nginx.host}\n"
}
firewall_rule "web" {
  host       = host.web1
  port       = 80
  allow_from = ["0.0.0.0/0", "::/0"]
}
file "b" {
  host    = host.web1
  path    = "/etc/b"
  content = "port=${firewall_rule.web.port}/${firewall_rule.web.proto} after ${file.a.path}\n"
}
"#,
        &[],
    );
    let p = load(&dir, &VarInputs::default());
    assert_eq!(
        find(&p, "file.a").attrs["content"],
        json!("pkg=nginx host=web1\n")
    );
    assert_eq!(
        find(&p, "file.a").depends_on,
        vec![Address::new("package.nginx")]
    );
    assert_eq!(
        find(&p, "file.b").attrs["content"],
        json!("port=80/tcp after /etc/a\n")
    );
    assert_eq!(
        find(&p, "file.b").depends_on,
        vec![Address::new("file.a"), Address::new("firewall_rule.web")]
    );
    // Only what is set: no proto.
    assert_eq!(
        find(&p, "firewall_rule.web").attrs,
        serde_json::from_value(json!({"port": 80, "allow_from": ["0.0.0.0/0", "::/0"]})).unwrap()
    );
}
