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

fn hosts() -> String {
    let kh = env("TERRACE_TEST_SSH_KNOWN_HOSTS");
    common::ssh_host_block("h1", &env("TERRACE_TEST_SSH_HOST1"), &kh, "")
        + &common::ssh_host_block("h2", &env("TERRACE_TEST_SSH_HOST2"), &kh, "")
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
        common::ssh_host_block(
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
        common::ssh_host_block(
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
    let hcl = format!(
        "{}\nfile \"f\" {{\n  host    = host.h2\n  path    = \"{path}\"\n  content = \"x\"\n}}\n",
        common::ssh_host_block(
            "h2",
            &env("TERRACE_TEST_SSH_HOST2"),
            forged_path.to_str().unwrap(),
            ""
        )
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
        common::ssh_host_block("h1", &env("TERRACE_TEST_SSH_HOST1"), &kh, ""),
        common::ssh_host_block("dead", "127.0.0.1:2299", &kh, "")
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

/// Tests that change the `terrace-fw` namespace's one terrace table run one at a time.
static FW_TABLE: std::sync::Mutex<()> = std::sync::Mutex::new(());

#[test]
fn multi_server_example_end_to_end() {
    let _fw = FW_TABLE.lock().unwrap_or_else(|e| e.into_inner());
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
        common::ssh_host_block("h1", &env("TERRACE_TEST_SSH_HOST1"), &env("TERRACE_TEST_SSH_KNOWN_HOSTS"), "")
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
        common::ssh_host_block(
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

#[test]
fn a_broken_file_is_its_own_error_while_drift_elsewhere_shows_the_changed_lines() {
    let dir = format!("/tmp/{}", unique("brk"));
    std::fs::create_dir_all(&dir).unwrap();
    let kh = env("TERRACE_TEST_SSH_KNOWN_HOSTS");
    let file = |name: &str, host: &str, content: &str| {
        format!(
            "file \"{name}\" {{\n  host    = host.{host}\n  path    = \"{dir}/{name}.conf\"\n  content = \"{content}\"\n  mode    = \"0644\"\n}}\n"
        )
    };
    let hcl = common::ssh_host_block("h1", &env("TERRACE_TEST_SSH_HOST1"), &kh, "")
        + &common::ssh_host_block("h2", &env("TERRACE_TEST_SSH_HOST2"), &kh, "")
        + &file("linked", "h1", "a\\n")
        + &file("edited", "h1", "one\\ntwo\\nthree\\n")
        + &file("other", "h2", "x\\n")
        + "command \"uses\" {\n  host       = host.h1\n  command    = \"true\"\n  unless     = \"true\"\n  depends_on = [file.linked]\n}\n";
    let p = Project::new(&hcl);
    p.apply();
    p.plan().expect_code(0);

    // By hand: one managed file becomes a symlink, another is edited.
    let linked = format!("{dir}/linked.conf");
    std::fs::remove_file(&linked).unwrap();
    std::os::unix::fs::symlink("/etc/hostname", &linked).unwrap();
    std::fs::write(format!("{dir}/edited.conf"), "one\nTWO\nthree\n").unwrap();

    let plan = p.plan().expect_code(1);
    // The symlink is that file's error, not the host's.
    assert!(
        plan.stderr
            .contains("error: file.linked could not be observed")
            && plan.stderr.contains("symbolic link"),
        "{}",
        plan.stderr
    );
    assert!(
        !plan.stderr.contains("could not be reached"),
        "{}",
        plan.stderr
    );
    // The rest of h1 is planned: the edit shows as lines, in the drift and the change.
    let drift = &plan.stdout[..plan.stdout.find("terrace will perform").unwrap()];
    assert!(
        drift.contains("# file.edited has changed outside terrace"),
        "{}",
        plan.stdout
    );
    assert!(
        drift.contains("      ~ content        = <<-EOT\n          @@ -1,3 +1,3 @@\n           one\n          -two\n          +TWO\n"),
        "{}",
        plan.stdout
    );
    assert!(
        plan.stdout
            .contains("# file.edited will be updated in place"),
        "{}",
        plan.stdout
    );
    assert!(
        plan.stdout.contains("          -TWO\n          +two\n"),
        "{}",
        plan.stdout
    );
    // What depends on the broken file waits with it.
    assert!(
        plan.stderr
            .contains("Not planned this run (2):\n  command.uses\n  file.linked\n"),
        "{}",
        plan.stderr
    );

    // Apply repairs what it can and says what it could not.
    let run = p.terrace(&["apply", "--auto-approve"]).expect_code(1);
    assert!(run.stderr.contains("file.linked"), "{}", run.stderr);
    assert_eq!(
        std::fs::read_to_string(format!("{dir}/edited.conf")).unwrap(),
        "one\ntwo\nthree\n"
    );
    assert_eq!(
        std::fs::read_link(&linked).unwrap(),
        std::path::PathBuf::from("/etc/hostname"),
        "terrace does not write through or over a link"
    );
    // Once the link is gone, the file is recreated and everything converges.
    std::fs::remove_file(&linked).unwrap();
    p.plan().expect_code(2);
    p.apply();
    p.plan().expect_code(0);
    assert_eq!(std::fs::read_to_string(&linked).unwrap(), "a\n");
    let _ = std::fs::remove_dir_all(&dir);
}

/// An sshd of this test's own (host1's config and key on a free port), so that the
/// test can freeze or kill it without touching the hosts other tests use.
struct PrivateHost {
    child: std::process::Child,
    known_hosts: std::path::PathBuf,
}

impl PrivateHost {
    fn start(dir: &std::path::Path, port: u16) -> PrivateHost {
        let ssh_dir = std::path::Path::new(&env("TERRACE_TEST_SSH_KEY"))
            .parent()
            .unwrap()
            .to_path_buf();
        let child = Command::new("/usr/sbin/sshd")
            .arg("-D")
            .arg("-f")
            .arg(ssh_dir.join("host1/sshd_config"))
            .arg("-o")
            .arg(format!("Port={port}"))
            .arg("-o")
            .arg(format!("PidFile={}", dir.join("sshd.pid").display()))
            .arg("-E")
            .arg(dir.join("sshd.log"))
            .spawn()
            .expect("start a private sshd");
        let key = std::fs::read_to_string(ssh_dir.join("host1/ssh_host_ed25519_key.pub")).unwrap();
        let key: Vec<&str> = key.split_whitespace().take(2).collect();
        let known_hosts = dir.join("known_hosts");
        std::fs::write(
            &known_hosts,
            format!("[127.0.0.1]:{port} {}\n", key.join(" ")),
        )
        .unwrap();
        let started = std::time::Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                started.elapsed().as_secs() < 10,
                "the private sshd did not start"
            );
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        PrivateHost { child, known_hosts }
    }

    /// The listener and every process it started (sessions, their commands).
    fn processes(&self) -> Vec<u32> {
        let mut all = vec![self.child.id()];
        let mut i = 0;
        while i < all.len() {
            let parent = all[i];
            for e in std::fs::read_dir("/proc").unwrap().flatten() {
                let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
                    continue;
                };
                let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
                    continue;
                };
                let ppid = stat
                    .rsplit(')')
                    .next()
                    .and_then(|r| r.split_whitespace().nth(1))
                    .and_then(|p| p.parse::<u32>().ok());
                if ppid == Some(parent) && !all.contains(&pid) {
                    all.push(pid);
                }
            }
            i += 1;
        }
        all
    }

    fn signal(&self, sig: &str) {
        for pid in self.processes() {
            let _ = Command::new("kill").args([sig, &pid.to_string()]).status();
        }
    }
}

impl Drop for PrivateHost {
    fn drop(&mut self) {
        self.signal("-KILL");
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn a_host_that_freezes_mid_apply_fails_alone_and_state_stays_truthful() {
    let work = tempfile::tempdir().unwrap();
    let port = free_port();
    let hx = PrivateHost::start(work.path(), port);
    let dir = format!("/tmp/{}", unique("frz"));
    std::fs::create_dir_all(&dir).unwrap();
    let kh = env("TERRACE_TEST_SSH_KNOWN_HOSTS");
    let hcl = format!(
        r#"{h1}{hx}
file "up" {{
  for_each = toset(["a", "b"])
  host     = host.h1
  path     = "{dir}/up-${{each.key}}"
  content  = "up\n"
}}
command "slow" {{
  host    = host.hx
  command = "touch {dir}/started; sleep 30; touch {dir}/slow.done"
  creates = "{dir}/slow.done"
}}
file "after" {{
  host       = host.hx
  path       = "{dir}/after"
  content    = "x\n"
  depends_on = [command.slow]
}}
file "beside" {{
  host    = host.hx
  path    = "{dir}/beside"
  content = "y\n"
}}
"#,
        h1 = common::ssh_host_block("h1", &env("TERRACE_TEST_SSH_HOST1"), &kh, ""),
        hx = common::ssh_host_block(
            "hx",
            &format!("127.0.0.1:{port}"),
            hx.known_hosts.to_str().unwrap(),
            ""
        ),
    );
    let p = Project::new(&hcl);
    let apply = Command::new(env!("CARGO_BIN_EXE_terrace"))
        .arg("-C")
        .arg(p.path())
        .args(["apply", "--auto-approve"])
        .env("NO_COLOR", "1")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Mid-apply, the host freezes: its connections stay open and nothing answers.
    let started = format!("{dir}/started");
    let t0 = std::time::Instant::now();
    while !std::path::Path::new(&started).exists() {
        assert!(
            t0.elapsed().as_secs() < 60,
            "the slow command never started"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    hx.signal("-STOP");
    let frozen_at = std::time::Instant::now();
    let out = apply.wait_with_output().unwrap();
    let took = frozen_at.elapsed();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(
        took.as_secs() < 90,
        "gave up on the frozen host after {took:?}"
    );
    assert!(
        stderr.contains("command.slow") && stderr.contains("connection to the host was lost"),
        "{stderr}"
    );
    // The other host was applied and saved; the frozen host's state is what happened.
    for k in ["a", "b"] {
        assert_eq!(
            std::fs::read_to_string(format!("{dir}/up-{k}")).unwrap(),
            "up\n"
        );
        assert!(p.state_attrs(&format!("file.up[\"{k}\"]")).is_object());
    }
    let in_state = |a: &str| {
        p.state()["resources"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["address"] == a)
    };
    // A create cut short stays recorded as pending (it may have half happened): never
    // as done.
    let done = |a: &str| {
        p.state()["resources"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["address"] == a && r["pending"] != serde_json::json!(true))
    };
    assert!(!done("command.slow"), "the command did not finish");
    assert!(!in_state("file.after") && !std::path::Path::new(&format!("{dir}/after")).exists());
    assert_eq!(
        in_state("file.beside"),
        std::path::Path::new(&format!("{dir}/beside")).exists(),
        "state says what exists"
    );

    // The host comes back (restarted): the next run converges by itself.
    drop(hx);
    let _hx = PrivateHost::start(work.path(), port);
    let _ = std::fs::remove_file(&started);
    p.write(&hcl.replace("sleep 30", "sleep 0"));
    p.apply();
    p.plan().expect_code(0);
    assert!(std::path::Path::new(&format!("{dir}/after")).exists());
    let _ = std::fs::remove_dir_all(&dir);
}

fn fw_nft(args: &[&str]) -> String {
    let out = Command::new("ip")
        .args(["netns", "exec", "terrace-fw", "nft"])
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn firewall_merged_networks_converge_and_a_foreign_rule_is_drift_until_applied_away() {
    let _fw = FW_TABLE.lock().unwrap_or_else(|e| e.into_inner());
    let kh = env("TERRACE_TEST_SSH_KNOWN_HOSTS");
    let hcl = common::ssh_host_block("fw", &env("TERRACE_TEST_SSH_FW"), &kh, "")
        + r#"
firewall_rule "m" {
  host       = host.fw
  port       = 18083
  allow_from = ["10.203.0.2", "192.0.2.0/25", "10.203.0.1", "192.0.2.128/25", "192.0.2.9"]
}
"#;
    let p = Project::new(&hcl);
    p.apply();
    // nft keeps {10.203.0.1-10.203.0.2, 192.0.2.0/24}: that is no drift.
    p.plan().expect_code(0);
    // Rules in another table are not terrace's business: no alarm.
    let other = unique("other");
    fw_nft(&["add", "table", "inet", &other]);
    fw_nft(&[
        "add",
        "chain",
        "inet",
        &other,
        "c",
        "{ type filter hook input priority 10 ; }",
    ]);
    fw_nft(&[
        "add", "rule", "inet", &other, "c", "tcp", "dport", "18083", "accept",
    ]);
    let quiet = p.plan();
    fw_nft(&["delete", "table", "inet", &other]);
    quiet.expect_code(0);

    fw_nft(&[
        "insert", "rule", "inet", "terrace", "input", "tcp", "dport", "18083", "accept",
    ]);
    let plan = p.plan().expect_code(2);
    assert!(
        plan.stdout
            .contains("# firewall_rule.m has changed outside terrace")
            && plan
                .stdout
                .contains("~ foreign_rules = [\n          + tcp dport 18083 accept\n        ]"),
        "{}",
        plan.stdout
    );
    p.apply();
    p.plan().expect_code(0);
    assert!(!fw_nft(&["list", "table", "inet", "terrace"]).contains("dport 18083 accept"));
    p.terrace(&["destroy", "--auto-approve"]).expect_code(0);
}

#[test]
fn sensitive_file_content_never_shows_in_a_drift_diff() {
    let dir = format!("/tmp/{}", unique("sec"));
    std::fs::create_dir_all(&dir).unwrap();
    let kh = env("TERRACE_TEST_SSH_KNOWN_HOSTS");
    // Readable by everyone on the host (the mode says so), but the content is secret.
    let hcl = format!(
        r#"{}
variable "token" {{
  type      = string
  sensitive = true
}}
file "env" {{
  host    = host.h1
  path    = "{dir}/app.env"
  content = "TOKEN=${{var.token}}\nLOG=info\n"
  mode    = "0644"
}}
"#,
        common::ssh_host_block("h1", &env("TERRACE_TEST_SSH_HOST1"), &kh, "")
    );
    let p = Project::new(&hcl);
    let vars = [("TERRACE_VAR_token", "tok-5ecr3t")];
    p.terrace_env(&["apply", "--auto-approve"], &vars)
        .expect_code(0);
    std::fs::write(
        format!("{dir}/app.env"),
        "TOKEN=by-hand-0therSecret\nLOG=debug\n",
    )
    .unwrap();
    let plan = p
        .terrace_env(&["plan", "--detailed-exitcode"], &vars)
        .expect_code(2);
    assert!(
        plan.stdout
            .contains("# file.env has changed outside terrace"),
        "{}",
        plan.stdout
    );
    for secret in ["tok-5ecr3t", "0therSecret", "LOG=debug", "LOG=info"] {
        assert!(
            !plan.all().contains(secret),
            "{secret} shown:\n{}",
            plan.all()
        );
    }
    p.terrace_env(&["apply", "--auto-approve"], &vars)
        .expect_code(0);
    p.terrace_env(&["plan", "--detailed-exitcode"], &vars)
        .expect_code(0);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_host_that_accepts_and_never_answers_cannot_hang_a_plan() {
    // Accepts TCP connections and never says a word.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for s in listener.incoming() {
            held.push(s);
        }
    });
    let path = format!("/tmp/{}", unique("mute"));
    let kh = env("TERRACE_TEST_SSH_KNOWN_HOSTS");
    let hcl = format!(
        "{}{}\nfile \"ok\" {{\n  host = host.h1\n  path = \"{path}\"\n  content = \"up\\n\"\n}}\nfile \"mute\" {{\n  host = host.mute\n  path = \"{path}.mute\"\n  content = \"x\"\n}}\n",
        common::ssh_host_block("h1", &env("TERRACE_TEST_SSH_HOST1"), &kh, ""),
        common::ssh_host_block("mute", &format!("127.0.0.1:{port}"), &kh, "")
    );
    let p = Project::new(&hcl);
    let started = std::time::Instant::now();
    let plan = p.plan().expect_code(1);
    assert!(started.elapsed().as_secs() < 60, "{:?}", started.elapsed());
    assert!(
        plan.stderr.contains("host.mute could not be reached") && plan.stderr.contains("timed out"),
        "{}",
        plan.stderr
    );
    assert!(
        plan.stdout.contains("# file.ok will be created"),
        "{}",
        plan.stdout
    );
}

/// A host file whose content holds a generated database password applies, converges,
/// and keeps the real password on the host (the hash describes the filled-in text,
/// not the reference marker).
#[test]
fn a_file_holding_a_generated_password_applies_and_converges() {
    let db = unique("filepw");
    let dir = format!("/tmp/{}", unique("terrace-filepw"));
    let hcl = format!(
        r#"{hosts}{pg}
database "app" {{
  service = service.pg
  name    = "{db}"
}}
command "mkdir" {{
  host    = host.h1
  command = "mkdir -p {dir}"
  creates = "{dir}"
}}
file "dbconf" {{
  host       = host.h1
  path       = "{dir}/db.conf"
  content    = "user={db}\npassword=${{database.app.password}}\n"
  depends_on = [command.mkdir]
}}
"#,
        hosts = hosts(),
        pg = common::pg_service(),
    );
    let p = Project::new(&hcl);
    let run = p.terrace(&["apply", "--auto-approve"]).expect_code(0);
    let password = p.state_attrs("database.app.user")["password"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(!run.all().contains(&password), "{}", run.all());
    p.plan().expect_code(0);
    // The file on the host holds the real password.
    let file = p.state_attrs("file.dbconf");
    let want = format!("user={db}\npassword={password}\n");
    let sha = {
        use sha2::Digest;
        hex_lower(&sha2::Sha256::digest(want.as_bytes()))
    };
    assert_eq!(file["content_sha256"], serde_json::json!(sha));
    p.terrace(&["destroy", "--auto-approve"]).expect_code(0);
}

fn hex_lower(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
