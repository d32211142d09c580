//! End to end: objects that hold data move to another server with their data, or the
//! plan refuses and nothing changes. Real servers: the local MariaDB and the MariaDB
//! inside the `terrace-fw` namespace (reached over SSH), the local PostgreSQL, the
//! local Docker engine and the second host's engine (`terrace-h2`, over SSH).

mod common;

use std::process::Command;

use common::{mysql_service, pg_service, unique, Project};

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: source target/services.env, target/ssh/env, target/ns-services.env and target/second-host.env")
    })
}

fn host_block(name: &str, hostport: &str, extra: &str) -> String {
    common::ssh_host_block(name, hostport, &env("TERRACE_TEST_SSH_KNOWN_HOSTS"), extra)
}

/// Runs SQL on the local MariaDB as the admin; returns the output lines.
fn local_sql(sql: &str) -> String {
    let out = Command::new("mariadb")
        .args([
            "--no-defaults",
            "--protocol=TCP",
            "--host=127.0.0.1",
            "--port=3306",
            "--user=terrace_admin",
            "-N",
            "-B",
            "-e",
            sql,
        ])
        .env("MYSQL_PWD", env("TERRACE_VAR_mysql_admin_password"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{sql}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Runs SQL on the namespace's MariaDB through its socket file.
fn ns_sql(sql: &str) -> String {
    let out = Command::new("mariadb")
        .args([
            "--no-defaults",
            "--socket",
            &env("TERRACE_TEST_NS_MYSQL_SOCKET"),
            "-N",
            "-B",
            "-e",
            sql,
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{sql}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn schema_exists(sql: fn(&str) -> String, db: &str) -> bool {
    !sql(&format!(
        "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = '{db}'"
    ))
    .is_empty()
}

fn two_mariadbs(db: &str, service: &str) -> String {
    format!(
        r#"{mysql}
variable "ns_mysql_admin_password" {{
  type      = string
  sensitive = true
}}
{host}
service "nsdb" {{
  engine   = "mariadb"
  endpoint = {{ address = "127.0.0.1", port = 3306 }}
  admin    = {{ user = "terrace_admin", password = var.ns_mysql_admin_password }}
  host     = host.fw
}}
database "app" {{
  service = service.{service}
  name    = "{db}"
}}
"#,
        mysql = mysql_service(),
        host = host_block("fw", &env("TERRACE_TEST_SSH_FW"), ""),
    )
}

fn ns_envs() -> Vec<(&'static str, String)> {
    vec![(
        "TERRACE_VAR_ns_mysql_admin_password",
        env("TERRACE_VAR_ns_mysql_admin_password"),
    )]
}

fn run(p: &Project, args: &[&str]) -> common::Run {
    let envs = ns_envs();
    let envs: Vec<(&str, &str)> = envs.iter().map(|(k, v)| (*k, v.as_str())).collect();
    p.terrace_env(args, &envs)
}

fn backups(p: &Project) -> Vec<String> {
    let dir = p.path().join(".terrace/backups");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .map(|d| {
            d.map(|e| e.unwrap().file_name().to_string_lossy().to_string())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

fn fill_local(db: &str) {
    local_sql(&format!(
        "CREATE TABLE `{db}`.posts (id INT PRIMARY KEY, title TEXT); \
         INSERT INTO `{db}`.posts VALUES (1, 'hello'), (2, 'world'), (3, 'again'); \
         CREATE TABLE `{db}`.users (id INT PRIMARY KEY); INSERT INTO `{db}`.users VALUES (7), (8);"
    ));
}

#[test]
fn a_mariadb_database_moves_to_another_server_with_its_rows() {
    let db = unique("mv");
    let p = Project::new(&two_mariadbs(&db, "db"));
    run(&p, &["apply", "--auto-approve"]).expect_code(0);
    fill_local(&db);

    p.write(&two_mariadbs(&db, "nsdb"));
    let plan = run(&p, &["plan", "--no-color"]).expect_code(0);
    assert!(
        plan.stdout.contains(
            "# database.app will be moved from service.db to service.nsdb, with its data"
        ),
        "{}",
        plan.stdout
    );
    assert!(
        plan.stdout.contains(&format!(
            "(database {db} moves from service.db to service.nsdb: copied, created there, restored and verified, then dropped here (the copy is kept))"
        )),
        "{}",
        plan.stdout
    );
    run(&p, &["apply", "--auto-approve"]).expect_code(0);

    assert_eq!(
        ns_sql(&format!(
            "SELECT GROUP_CONCAT(title ORDER BY id) FROM `{db}`.posts"
        )),
        "hello,world,again"
    );
    assert_eq!(ns_sql(&format!("SELECT COUNT(*) FROM `{db}`.users")), "2");
    assert!(
        !schema_exists(local_sql, &db),
        "the old database is dropped"
    );
    // The move's copy and the drop's dump are both kept.
    let files = backups(&p);
    assert!(
        files.iter().any(|f| f.starts_with(&format!("{db}-move-"))),
        "{files:?}"
    );
    assert!(
        files
            .iter()
            .any(|f| f.starts_with(&format!("{db}-")) && !f.contains("-move-")),
        "{files:?}"
    );
    let state = p.state();
    assert!(
        !state.to_string().contains("(deposed)"),
        "no deposed record left: {state}"
    );
    run(&p, &["plan", "--detailed-exitcode"]).expect_code(0);
    run(&p, &["destroy", "--auto-approve"]).expect_code(0);
    assert!(!schema_exists(ns_sql, &db));
}

#[test]
fn a_move_across_engines_is_refused_and_nothing_changes() {
    let db = unique("mvx");
    let hcl = |service: &str| {
        format!(
            "{}{}\ndatabase \"app\" {{\n  service = service.{service}\n  name    = \"{db}\"\n}}\n",
            mysql_service(),
            pg_service()
        )
    };
    let p = Project::new(&hcl("db"));
    p.apply().expect_code(0);
    fill_local(&db);
    let before = std::fs::read_to_string(p.state_path()).unwrap();

    p.write(&hcl("pg"));
    let plan = p.plan();
    assert_ne!(plan.code, 0);
    let text = flat(&plan.all());
    assert!(
        text.contains(&format!(
            "database.app: database \"{db}\" cannot move from service.db to service.pg: its data is a mysql copy, which a postgres server cannot restore"
        )),
        "{text}"
    );
    let apply = p.terrace(&["apply", "--auto-approve"]);
    assert_ne!(apply.code, 0, "{}", apply.all());
    assert!(
        apply.all().contains("nothing was applied"),
        "{}",
        apply.all()
    );

    assert_eq!(
        local_sql(&format!("SELECT COUNT(*) FROM `{db}`.posts")),
        "3"
    );
    assert_eq!(std::fs::read_to_string(p.state_path()).unwrap(), before);
    p.write(&hcl("db"));
    p.terrace(&["plan", "--detailed-exitcode"]).expect_code(0);
    p.terrace(&["destroy", "--auto-approve"]).expect_code(0);
}

#[test]
fn a_move_onto_a_server_that_holds_that_name_is_refused() {
    let db = unique("mvh");
    let p = Project::new(&two_mariadbs(&db, "db"));
    run(&p, &["apply", "--auto-approve"]).expect_code(0);
    fill_local(&db);
    ns_sql(&format!("CREATE DATABASE `{db}`"));

    p.write(&two_mariadbs(&db, "nsdb"));
    let plan = run(&p, &["plan"]);
    assert_ne!(plan.code, 0);
    assert!(
        flat(&plan.all()).contains(&format!(
            "database.app: database \"{db}\" cannot move to service.nsdb: it already holds one of that name"
        )) && flat(&plan.all()).contains(
            "If service.nsdb reaches the same server as service.db (another address for it), that is this very one: keep it on service.db."
        ),
        "{}",
        plan.all()
    );
    assert_ne!(run(&p, &["apply", "--auto-approve"]).code, 0);
    assert_eq!(
        local_sql(&format!("SELECT COUNT(*) FROM `{db}`.posts")),
        "3"
    );
    ns_sql(&format!("DROP DATABASE `{db}`"));
    p.write(&two_mariadbs(&db, "db"));
    run(&p, &["destroy", "--auto-approve"]).expect_code(0);
}

/// Output with miette's line wrapping undone: words joined by single spaces.
fn flat(text: &str) -> String {
    text.split_whitespace()
        .filter(|w| *w != "|")
        .collect::<Vec<_>>()
        .join(" ")
}

fn docker(socket: Option<&str>, args: &[&str]) -> std::process::Output {
    let mut c = Command::new("docker");
    if let Some(s) = socket {
        c.arg("-H").arg(format!("unix://{s}"));
    }
    c.args(args).output().unwrap()
}

fn volume_hcl(name: &str, on_h2: bool) -> String {
    let host = if on_h2 { "\n  host = host.h2" } else { "" };
    format!(
        "{}\nvolume \"data\" {{\n  name = \"{name}\"{host}\n}}\n",
        host_block(
            "h2",
            &env("TERRACE_TEST_SSH_H2"),
            &format!(
                "docker = {{ socket = \"{}\" }}",
                env("TERRACE_TEST_H2_DOCKER_SOCKET")
            )
        )
    )
}

/// Lists the files of volume `name` (path and content) with a throwaway container.
fn volume_files(socket: Option<&str>, name: &str, image: &str) -> String {
    let out = docker(
        socket,
        &[
            "run",
            "--rm",
            "-v",
            &format!("{name}:/v"),
            image,
            "sh",
            "-c",
            "cd /v && find . -type f | sort | while read f; do echo \"$f=$(cat \"$f\")\"; done",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// An image with a shell that both engines have.
fn shell_image() -> String {
    std::env::var("TERRACE_TEST_SHELL_IMAGE").unwrap_or_else(|_| "terrace/busybox:1".into())
}

#[test]
fn a_docker_volume_moves_to_the_second_hosts_engine_with_its_files() {
    let name = unique("mvvol");
    let image = shell_image();
    let h2 = env("TERRACE_TEST_H2_DOCKER_SOCKET");
    let p = Project::new(&volume_hcl(&name, false));
    p.apply().expect_code(0);
    let out = docker(
        None,
        &[
            "run",
            "--rm",
            "-v",
            &format!("{name}:/v"),
            &image,
            "sh",
            "-c",
            "mkdir -p /v/sub && echo one > /v/a.txt && echo two > /v/sub/b.txt",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let files = volume_files(None, &name, &image);
    assert_eq!(files, "./a.txt=one\n./sub/b.txt=two");

    p.write(&volume_hcl(&name, true));
    let plan = p.terrace(&["plan", "--no-color"]).expect_code(0);
    assert!(
        plan.stdout
            .contains("will be moved from docker.local to docker.h2"),
        "{}",
        plan.stdout
    );
    p.apply().expect_code(0);
    assert_eq!(volume_files(Some(&h2), &name, &image), files);
    assert!(
        !docker(None, &["volume", "inspect", &name]).status.success(),
        "the old volume is removed"
    );
    assert!(backups(&p)
        .iter()
        .any(|f| f.starts_with(&format!("docker-volume-{name}-"))));
    p.terrace(&["plan", "--detailed-exitcode"]).expect_code(0);
    p.terrace(&["destroy", "--auto-approve"]).expect_code(0);
}

/// Journal records (the header line excluded), 0 if there is none.
fn journal_records(p: &Project) -> usize {
    let mut path = p.state_path().into_os_string();
    path.push(".journal");
    std::fs::read(&path)
        .map(|b| b.iter().filter(|c| **c == b'\n').count().saturating_sub(1))
        .unwrap_or(0)
}

/// Runs `terrace apply` and SIGKILLs it once the journal holds `records` records;
/// returns whether it was killed (false: it finished first).
fn apply_killed_at(p: &Project, records: usize) -> bool {
    let mut child = Command::new(env!("CARGO_BIN_EXE_terrace"))
        .arg("-C")
        .arg(p.path())
        .args(["apply", "--auto-approve"])
        .env("NO_COLOR", "1")
        .envs(ns_envs())
        .env(
            "TERRACE_VAR_mysql_admin_password",
            env("TERRACE_VAR_mysql_admin_password"),
        )
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "the apply failed before the kill point");
            return false;
        }
        if journal_records(p) >= records {
            child.kill().unwrap();
            child.wait().unwrap();
            return true;
        }
        assert!(started.elapsed().as_secs() < 300, "the apply hangs");
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
}

/// A move killed at every journal checkpoint (while the copy is made, right after the
/// new database is recorded, while the old one is dropped) converges on the next apply:
/// the rows are on the new server, the old database is gone, no deposed record is left,
/// and the next plan is empty. The old database is never dropped before the new one
/// is verified: at every kill point it still exists, or the new one is recorded.
#[test]
fn a_killed_move_converges_on_the_next_apply_and_never_loses_the_data() {
    let mut killed = 0;
    let mut deposed_seen = 0;
    for k in 1..=8 {
        let db = unique("mvk");
        let p = Project::new(&two_mariadbs(&db, "db"));
        run(&p, &["apply", "--auto-approve"]).expect_code(0);
        fill_local(&db);
        p.write(&two_mariadbs(&db, "nsdb"));
        if apply_killed_at(&p, k) {
            killed += 1;
        }
        // Whatever the kill point: the old database exists, or the state records the
        // new one as verified (managed, not pending).
        let old_there = schema_exists(local_sql, &db);
        let list = run(&p, &["state", "list"]).stdout;
        if list.contains("database.app (deposed)") {
            deposed_seen += 1;
            eprintln!("kill at record {k}: deposed; old database there: {old_there}");
        }
        let state = run(&p, &["state", "show", "database.app"]);
        let recorded: serde_json::Value =
            serde_json::from_str(&state.stdout).unwrap_or(serde_json::Value::Null);
        let new_verified = recorded["provider"] == "service.nsdb" && recorded["pending"] != true;
        assert!(
            old_there || new_verified,
            "kill at record {k}: the old database is gone before the new one was verified\n{}",
            state.all()
        );
        run(&p, &["apply", "--auto-approve"]).expect_code(0);
        assert_eq!(
            ns_sql(&format!(
                "SELECT GROUP_CONCAT(title ORDER BY id) FROM `{db}`.posts"
            )),
            "hello,world,again",
            "kill at record {k}"
        );
        assert_eq!(ns_sql(&format!("SELECT COUNT(*) FROM `{db}`.users")), "2");
        assert!(!schema_exists(local_sql, &db), "kill at record {k}");
        assert!(!p.state().to_string().contains("(deposed)"));
        run(&p, &["plan", "--detailed-exitcode"]).expect_code(0);
        run(&p, &["destroy", "--auto-approve"]).expect_code(0);
    }
    assert!(killed >= 3, "only {killed} applies were killed");
    // Some kills fell inside the move (old copy deposed): the resumed and the
    // finishing paths ran.
    assert!(deposed_seen >= 1, "no kill fell inside a move");
}

fn tenant_hcl(db: &str, service: &str) -> String {
    let base = two_mariadbs(db, service);
    // The standalone database block is replaced by a tenant's, used by its app.
    let base = base.split("database \"app\"").next().unwrap().to_string();
    format!(
        r#"{base}
image "busybox" {{
  name = "terrace/busybox:1"
  pull = "never"
}}
tenant "t" {{
  database {{
    service = service.{service}
    name    = "{db}"
  }}
  app {{
    name    = "{db}-app"
    image   = image.busybox
    command = ["sleep", "3600"]
    env     = {{ DB_PASSWORD = self.database.password }}
    memory  = "16m"
  }}
}}
"#
    )
}

fn container_id(name: &str) -> String {
    let out = docker(None, &["inspect", "-f", "{{.Id}}", name]);
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// A tenant's database moves; its app, whose configuration did not change, is stopped
/// before the copy and started again after it (a new container), never writing to the
/// old copy after it was taken.
#[test]
fn a_tenants_app_is_stopped_during_its_databases_move() {
    let db = unique("mvt");
    let p = Project::new(&tenant_hcl(&db, "db"));
    run(&p, &["apply", "--auto-approve"]).expect_code(0);
    fill_local(&db);
    let before = container_id(&format!("{db}-app"));
    assert!(!before.is_empty());

    p.write(&tenant_hcl(&db, "nsdb"));
    let plan = run(&p, &["plan", "--no-color"]).expect_code(0);
    assert!(
        plan.stdout
            .contains("must be replaced (it uses what moves to another server)"),
        "{}",
        plan.stdout
    );
    let apply = run(&p, &["apply", "--auto-approve", "--no-color"]).expect_code(0);
    // Its order: the app is destroyed before the database is copied, created after.
    let pos = |needle: &str| {
        apply
            .stdout
            .find(needle)
            .unwrap_or_else(|| panic!("{needle:?} not in:\n{}", apply.stdout))
    };
    let destroyed = pos("tenant.t.app: Destruction complete");
    let moved = pos("tenant.t.database: Creation complete");
    let started = pos("tenant.t.app: Creation complete");
    assert!(destroyed < moved && moved < started, "{}", apply.stdout);
    let after = container_id(&format!("{db}-app"));
    assert!(!after.is_empty() && after != before, "a new container runs");
    assert_eq!(ns_sql(&format!("SELECT COUNT(*) FROM `{db}`.posts")), "3");
    assert!(!schema_exists(local_sql, &db));
    run(&p, &["plan", "--detailed-exitcode"]).expect_code(0);
    run(&p, &["destroy", "--auto-approve"]).expect_code(0);
}

/// A volume's move killed at each journal checkpoint converges on the next apply: the
/// files are on the second host's engine, the local volume is removed, no deposed record
/// is left; at every kill point the old volume exists or the new one is recorded.
#[test]
fn a_killed_volume_move_converges_on_the_next_apply() {
    let image = shell_image();
    let h2 = env("TERRACE_TEST_H2_DOCKER_SOCKET");
    let mut killed = 0;
    for k in 1..=4 {
        let name = unique("mvkv");
        let p = Project::new(&volume_hcl(&name, false));
        p.apply().expect_code(0);
        let out = docker(
            None,
            &[
                "run",
                "--rm",
                "-v",
                &format!("{name}:/v"),
                &image,
                "sh",
                "-c",
                "echo one > /v/a.txt && echo two > /v/b.txt",
            ],
        );
        assert!(out.status.success());
        p.write(&volume_hcl(&name, true));
        if apply_killed_at(&p, k) {
            killed += 1;
        }
        let old_there = docker(None, &["volume", "inspect", &name]).status.success();
        let shown = p.terrace(&["state", "show", "volume.data"]);
        let recorded: serde_json::Value =
            serde_json::from_str(&shown.stdout).unwrap_or(serde_json::Value::Null);
        let new_verified = recorded["provider"] == "docker.h2" && recorded["pending"] != true;
        assert!(
            old_there || new_verified,
            "kill at record {k}: {}",
            shown.all()
        );
        p.apply().expect_code(0);
        assert_eq!(
            volume_files(Some(&h2), &name, &image),
            "./a.txt=one\n./b.txt=two",
            "kill at record {k}"
        );
        assert!(!docker(None, &["volume", "inspect", &name]).status.success());
        assert!(!p.state().to_string().contains("(deposed)"));
        p.terrace(&["plan", "--detailed-exitcode"]).expect_code(0);
        p.terrace(&["destroy", "--auto-approve"]).expect_code(0);
    }
    assert!(killed >= 1, "no apply was killed");
}
