//! End to end over real SSH: the test hosts of `scripts/ssh-hosts.sh` (two sshd on
//! loopback, one inside the `terrace-fw` network namespace) and the MariaDB that
//! `scripts/ns-services.sh` runs inside that namespace, reachable only through SSH.

mod common;

use std::process::Command;

use common::{unique, Project};

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: run scripts/ssh-hosts.sh and scripts/ns-services.sh and source target/ssh/env and target/ns-services.env (scripts/test.sh does all of it)")
    })
}

fn host_block(name: &str, hostport: &str, known_hosts: &str, extra: &str) -> String {
    let (address, port) = hostport.rsplit_once(':').unwrap();
    format!(
        r#"
host "{name}" {{
  address       = "{address}"
  port          = {port}
  user          = "{user}"
  identity_file = "{key}"
  known_hosts   = "{known_hosts}"
  become        = true
  {extra}
}}
"#,
        user = env("TERRACE_TEST_SSH_USER"),
        key = env("TERRACE_TEST_SSH_KEY"),
    )
}

fn hosts() -> String {
    let kh = env("TERRACE_TEST_SSH_KNOWN_HOSTS");
    host_block("h1", &env("TERRACE_TEST_SSH_HOST1"), &kh, "")
        + &host_block("h2", &env("TERRACE_TEST_SSH_HOST2"), &kh, "")
}

fn files_hcl(dir: &str, content: &str) -> String {
    format!(
        r#"{}
command "mkdir" {{
  for_each = toset(["h1", "h2"])
  host     = each.key == "h1" ? host.h1 : host.h2
  command  = "mkdir -p {dir}"
  creates  = "{dir}"
}}
file "conf" {{
  for_each   = toset(["h1", "h2"])
  host       = each.key == "h1" ? host.h1 : host.h2
  path       = "{dir}/app-${{each.key}}.conf"
  content    = "{content}"
  mode       = "0640"
  depends_on = [command.mkdir]
}}
"#,
        hosts()
    )
}

#[test]
fn files_on_two_hosts_create_converge_show_a_line_diff_and_delete() {
    let dir = format!("/tmp/{}", unique("sshf"));
    let p = Project::new(&files_hcl(&dir, "one\\ntwo\\nthree\\n"));
    let plan = p.plan().expect_code(2);
    assert!(
        plan.stdout.contains(r#"# file.conf["h1"] will be created"#),
        "{}",
        plan.stdout
    );
    p.apply();
    assert_eq!(
        std::fs::read_to_string(format!("{dir}/app-h2.conf")).unwrap(),
        "one\ntwo\nthree\n"
    );
    p.plan().expect_code(0);

    // Commands run with the usual umask: what they create is readable by others.
    use std::os::unix::fs::PermissionsExt as _;
    let mode = std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o755, "directory made by a command");

    // A changed line shows as a unified line diff, not one opaque string.
    p.write(&files_hcl(&dir, "one\\n2\\nthree\\n"));
    let plan = p.plan().expect_code(2);
    assert!(plan.stdout.contains("@@ -1,3 +1,3 @@"), "{}", plan.stdout);
    assert!(plan.stdout.contains("          -two\n"), "{}", plan.stdout);
    assert!(plan.stdout.contains("          +2\n"), "{}", plan.stdout);
    p.apply();
    assert_eq!(
        std::fs::read_to_string(format!("{dir}/app-h1.conf")).unwrap(),
        "one\n2\nthree\n"
    );
    p.plan().expect_code(0);

    // Edited by hand: drift, put back by apply.
    std::fs::write(format!("{dir}/app-h1.conf"), "tampered\n").unwrap();
    let plan = p.plan().expect_code(2);
    assert!(
        plan.stdout.contains("has changed outside terrace"),
        "{}",
        plan.stdout
    );
    p.apply();
    assert_eq!(
        std::fs::read_to_string(format!("{dir}/app-h1.conf")).unwrap(),
        "one\n2\nthree\n"
    );

    p.terrace(&["destroy", "--auto-approve"]).expect_code(0);
    assert!(!std::path::Path::new(&format!("{dir}/app-h1.conf")).exists());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn sql_over_an_ssh_tunnel_reaches_a_server_bound_to_the_hosts_loopback() {
    let db = unique("tun");
    let hcl = format!(
        r#"{}
variable "ns_mysql_admin_password" {{
  type      = string
  sensitive = true
}}
service "nsdb" {{
  engine   = "mariadb"
  endpoint = {{ address = "127.0.0.1", port = 3306 }}
  admin    = {{ user = "terrace_admin", password = var.ns_mysql_admin_password }}
  host     = host.fw
}}
database "app" {{
  service = service.nsdb
  name    = "{db}"
}}
"#,
        host_block(
            "fw",
            &env("TERRACE_TEST_SSH_FW"),
            &env("TERRACE_TEST_SSH_KNOWN_HOSTS"),
            ""
        )
    );
    let p = Project::new(&hcl);
    let envs = [(
        "TERRACE_VAR_ns_mysql_admin_password",
        env("TERRACE_VAR_ns_mysql_admin_password"),
    )];
    let envs: Vec<(&str, &str)> = envs.iter().map(|(k, v)| (*k, v.as_str())).collect();
    p.terrace_env(&["apply", "--auto-approve"], &envs)
        .expect_code(0);
    // The server only listens inside the namespace: ask it through its socket file.
    let out = Command::new("mariadb")
        .args([
            "--no-defaults",
            "--socket",
            &env("TERRACE_TEST_NS_MYSQL_SOCKET"),
            "-N",
            "-e",
        ])
        .arg(format!(
            "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = '{db}'"
        ))
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), db);
    p.terrace_env(&["plan", "--detailed-exitcode"], &envs)
        .expect_code(0);
    p.terrace_env(&["destroy", "--auto-approve"], &envs)
        .expect_code(0);
}

#[test]
fn docker_over_ssh_through_a_forwarded_socket() {
    let name = unique("sshvol");
    let hcl = format!(
        "{}\nvolume \"v\" {{\n  host = host.h1\n  name = \"{name}\"\n}}\n",
        host_block(
            "h1",
            &env("TERRACE_TEST_SSH_HOST1"),
            &env("TERRACE_TEST_SSH_KNOWN_HOSTS"),
            "docker = { socket = \"/var/run/docker.sock\" }"
        )
    );
    let p = Project::new(&hcl);
    p.apply();
    let inspect = Command::new("docker")
        .args(["volume", "inspect", &name])
        .output()
        .unwrap();
    assert!(inspect.status.success(), "volume was not created");
    let labels = String::from_utf8_lossy(&inspect.stdout).to_string();
    assert!(labels.contains("terrace.managed"), "{labels}");
    p.plan().expect_code(0);
    let destroy = p.terrace(&["destroy", "--auto-approve"]).expect_code(0);
    // The volume's content came through the forwarded socket into a local copy first.
    let copy = destroy
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("Copied before destroying: "))
        .unwrap_or_else(|| panic!("no copy printed: {}", destroy.stdout));
    assert!(std::path::Path::new(copy).is_file(), "{copy}");
    assert!(!Command::new("docker")
        .args(["volume", "inspect", &name])
        .output()
        .unwrap()
        .status
        .success());
}

#[test]
fn a_changed_host_key_is_refused_and_names_the_host() {
    // A known_hosts in which h2's entry carries h1's key: h2 now "presents a changed key".
    let kh = std::fs::read_to_string(env("TERRACE_TEST_SSH_KNOWN_HOSTS")).unwrap();
    let (a1, p1) = env("TERRACE_TEST_SSH_HOST1")
        .rsplit_once(':')
        .map(|(a, p)| (a.to_string(), p.to_string()))
        .unwrap();
    let (a2, p2) = env("TERRACE_TEST_SSH_HOST2")
        .rsplit_once(':')
        .map(|(a, p)| (a.to_string(), p.to_string()))
        .unwrap();
    let h1_tag = format!("[{a1}]:{p1} ");
    let h2_tag = format!("[{a2}]:{p2} ");
    let h1_key = kh
        .lines()
        .find(|l| l.starts_with(&h1_tag))
        .expect("h1 in known_hosts");
    let forged = format!("{}{}\n", h2_tag, &h1_key[h1_tag.len()..]);
    let dir = tempfile::tempdir().unwrap();
    let forged_path = dir.path().join("known_hosts");
    std::fs::write(&forged_path, forged).unwrap();

    let path = format!("/tmp/{}", unique("hk"));
    let hcl =
        format!(
        "{}\nfile \"f\" {{\n  host    = host.h2\n  path    = \"{path}\"\n  content = \"x\"\n}}\n",
        host_block("h2", &env("TERRACE_TEST_SSH_HOST2"), forged_path.to_str().unwrap(), "")
    );
    let p = Project::new(&hcl);
    let run = p.terrace(&["apply", "--auto-approve"]).expect_code(1);
    assert!(run.stderr.contains("host key"), "{}", run.stderr);
    assert!(run.stderr.contains("h2"), "{}", run.stderr);
    assert!(!std::path::Path::new(&path).exists(), "nothing was written");
}

#[test]
fn an_unreachable_host_fails_by_name_while_the_other_host_is_applied_and_saved() {
    let path = format!("/tmp/{}", unique("iso"));
    let kh = env("TERRACE_TEST_SSH_KNOWN_HOSTS");
    let hcl = format!(
        "{}{}\nfile \"ok\" {{\n  host = host.h1\n  path = \"{path}\"\n  content = \"up\\n\"\n}}\nfile \"lost\" {{\n  host = host.dead\n  path = \"{path}.lost\"\n  content = \"x\"\n}}\n",
        host_block("h1", &env("TERRACE_TEST_SSH_HOST1"), &kh, ""),
        host_block("dead", "127.0.0.1:2299", &kh, "")
    );
    let p = Project::new(&hcl);
    let run = p.terrace(&["apply", "--auto-approve"]).expect_code(1);
    assert!(
        run.stderr.contains("host.dead could not be reached"),
        "{}",
        run.stderr
    );
    assert!(
        run.stdout.contains("Apply complete! Resources: 1 added"),
        "{}",
        run.all()
    );
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "up\n");
    assert!(
        p.state_attrs("file.ok").is_object(),
        "the reachable host's change is in state"
    );
    let _ = std::fs::remove_file(&path);
}

/// Tries a TCP connection with a short timeout.
fn reachable(addr: &str) -> bool {
    let addr: std::net::SocketAddr = addr.parse().unwrap();
    std::net::TcpStream::connect_timeout(&addr, std::time::Duration::from_millis(700)).is_ok()
}

#[test]
fn multi_server_example_end_to_end() {
    let hcl = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/multi-server/main.hcl"
    ))
    .unwrap();
    let p = Project::new(&hcl);
    let src = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/multi-server/templates"
    );
    let dst = p.path().join("templates");
    std::fs::create_dir_all(&dst).unwrap();
    for f in std::fs::read_dir(src).unwrap() {
        let f = f.unwrap();
        std::fs::copy(f.path(), dst.join(f.file_name())).unwrap();
    }

    // Rules left in the namespace by an interrupted run would read as unmanaged objects.
    let _ = Command::new("ip")
        .args([
            "netns",
            "exec",
            "terrace-fw",
            "nft",
            "delete",
            "table",
            "inet",
            "terrace",
        ])
        .status();
    let etc = format!("/tmp/{}/etc", unique("ms"));
    let app = unique("ms");
    let (a1, p1) = env("TERRACE_TEST_SSH_HOST1")
        .rsplit_once(':')
        .map(|(a, p)| (a.to_string(), p.to_string()))
        .unwrap();
    let (a2, p2) = env("TERRACE_TEST_SSH_HOST2")
        .rsplit_once(':')
        .map(|(a, p)| (a.to_string(), p.to_string()))
        .unwrap();
    let (af, pf) = env("TERRACE_TEST_SSH_FW")
        .rsplit_once(':')
        .map(|(a, p)| (a.to_string(), p.to_string()))
        .unwrap();
    // HTTP and worker on the loopback hosts; Redis and MySQL on the host inside the
    // namespace, whose firewall and loopback-only MariaDB are its own.
    let servers = format!(
        "{{ http = {{ address = \"{a1}\", port = {p1} }}, worker = {{ address = \"{a2}\", port = {p2} }}, redis = {{ address = \"{af}\", port = {pf} }}, mysql = {{ address = \"{af}\", port = {pf} }} }}"
    );
    let mut vars = vec![
        format!("servers={servers}"),
        // Seen from inside the namespace, the app servers come from its veth peer.
        "app_servers=[\"10.203.0.1\"]".to_string(),
        format!("ssh_user={}", env("TERRACE_TEST_SSH_USER")),
        format!("ssh_key={}", env("TERRACE_TEST_SSH_KEY")),
        format!("known_hosts={}", env("TERRACE_TEST_SSH_KNOWN_HOSTS")),
        format!("etc_dir={etc}"),
        // Real daemons would collide on this one machine; the provider's own tests
        // cover them. One small package keeps the package path in the run.
        "packages={ http = [\"sl\"] }".to_string(),
        "daemons={ http = [] }".to_string(),
        format!("apps={{ {app}_flow = \"flow.test\", {app}_links = \"links.test\" }}"),
    ];
    let envs_owned = [
        (
            "TERRACE_VAR_mysql_admin_password",
            env("TERRACE_VAR_ns_mysql_admin_password"),
        ),
        ("TERRACE_VAR_redis_password", "redis-Secret-77".to_string()),
    ];
    let envs: Vec<(&str, &str)> = envs_owned.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let run = |cmd: &[&str], vars: &[String]| {
        let mut args: Vec<&str> = cmd.to_vec();
        for v in vars {
            args.push("--var");
            args.push(v);
        }
        p.terrace_env(&args, &envs)
    };

    let plan = run(&["plan", "--detailed-exitcode"], &vars).expect_code(2);
    assert!(
        plan.stdout
            .contains("# firewall_rule.redis will be created"),
        "{}",
        plan.stdout
    );
    assert!(
        !plan.all().contains("redis-Secret-77"),
        "secret in the plan"
    );
    run(&["apply", "--auto-approve"], &vars).expect_code(0);
    run(&["plan", "--detailed-exitcode"], &vars).expect_code(0);

    let site =
        std::fs::read_to_string(format!("{etc}/nginx/sites-available/marg-ecosystem")).unwrap();
    assert!(
        site.contains("server_name flow.test;") && site.contains("server_name links.test;"),
        "{site}"
    );
    let conf = std::fs::read_to_string(format!("{etc}/redis/redis.conf")).unwrap();
    assert!(
        conf.contains("requirepass redis-Secret-77"),
        "rendered with the secret"
    );

    // The firewall inside the namespace: the app servers' address may reach 6379...
    let listener = Command::new("ip")
        .args(["netns", "exec", "terrace-fw", "python3", "-c",
               "import socket,time\ns=socket.socket()\ns.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\ns.bind(('0.0.0.0',6379))\ns.listen(8)\ntime.sleep(30)"])
        .spawn()
        .unwrap();
    struct Kill(std::process::Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let _listener = Kill(listener);
    let target = format!("{af}:6379");
    let mut up = false;
    for _ in 0..30 {
        if reachable(&target) {
            up = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(up, "allowed address cannot reach redis' port");
    // ...and once the allowed list no longer includes it, it cannot.
    vars[1] = "app_servers=[\"10.203.0.77\"]".to_string();
    let plan = run(&["plan", "--detailed-exitcode"], &vars).expect_code(2);
    assert!(plan.stdout.contains("~ allow_from"), "{}", plan.stdout);
    run(&["apply", "--auto-approve"], &vars).expect_code(0);
    assert!(
        !reachable(&target),
        "firewall did not block the address it no longer allows"
    );

    run(&["destroy", "--auto-approve"], &vars).expect_code(0);
    assert!(reachable(&target), "destroy removed the rule");
    let _ = std::fs::remove_dir_all(etc.trim_end_matches("/etc"));
}

#[test]
fn a_command_whose_guard_is_already_satisfied_is_adopted_not_a_conflict() {
    let dir = format!("/tmp/{}", unique("adopt"));
    std::fs::create_dir_all(&dir).unwrap();
    let hcl = format!(
        "{}\ncommand \"mk\" {{\n  host    = host.h1\n  command = \"mkdir -p {dir} && touch {dir}/ran\"\n  creates = \"{dir}\"\n}}\n",
        host_block("h1", &env("TERRACE_TEST_SSH_HOST1"), &env("TERRACE_TEST_SSH_KNOWN_HOSTS"), "")
    );
    let p = Project::new(&hcl);
    let plan = p.plan().expect_code(2);
    assert!(!plan.stdout.contains("Conflicts"), "{}", plan.stdout);
    assert!(plan.stdout.contains("apply adopts it"), "{}", plan.stdout);
    p.apply();
    assert!(
        !std::path::Path::new(&format!("{dir}/ran")).exists(),
        "the guard held: nothing ran"
    );
    p.plan().expect_code(0);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn postgres_over_ssh_through_a_private_socket_including_the_dump_before_drop() {
    let db = unique("pgtun");
    let hcl = format!(
        r#"{}
variable "pg_admin_password" {{
  type      = string
  sensitive = true
}}
service "pg" {{
  engine   = "postgres"
  endpoint = {{ address = "127.0.0.1", port = 5432 }}
  admin    = {{ user = "terrace_admin", password = var.pg_admin_password }}
  host     = host.h1
}}
database "app" {{
  service          = service.pg
  name             = "{db}"
  connection_limit = 3
}}
"#,
        host_block(
            "h1",
            &env("TERRACE_TEST_SSH_HOST1"),
            &env("TERRACE_TEST_SSH_KNOWN_HOSTS"),
            ""
        )
    );
    let p = Project::new(&hcl);
    p.apply();
    p.plan().expect_code(0);
    p.write(&hcl[..hcl.find("database \"app\"").unwrap()]);
    let run = p.apply();
    let dump = run
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("Dumped before dropping: "))
        .unwrap_or_else(|| panic!("no dump: {}", run.stdout));
    assert!(
        std::fs::read_to_string(dump)
            .unwrap()
            .contains("CREATE DATABASE"),
        "pg_dump through the socket"
    );
}
