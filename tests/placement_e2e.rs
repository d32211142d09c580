//! Tenants placed across two real Docker hosts reached over SSH (`examples/multi-host-farm`):
//! host1 is this machine's sshd (127.0.0.1:2222) and engine, h2 the `terrace-h2`
//! namespace's sshd and engine (`scripts/second-host.sh`). Each host runs its own
//! MariaDB container; each tenant's app must run on the engine its placement names
//! and its database live on that host's MariaDB.

mod common;

use std::process::Command;

use common::{allow_destroying_services, free_port, unique, Cleanup, Project};

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: source target/ssh/env and target/second-host.env")
    })
}

/// `docker` against h2's engine (its socket is on this machine's filesystem).
fn h2_docker() -> Command {
    let mut c = Command::new("docker");
    c.arg("-H")
        .arg(format!("unix://{}", env("TERRACE_TEST_H2_DOCKER_SOCKET")));
    c
}

/// Removes what a test made on h2's engine with this name prefix, even if it failed.
struct CleanupH2(String);

impl Drop for CleanupH2 {
    fn drop(&mut self) {
        let p = &self.0;
        let d = format!("docker -H unix://{}", env("TERRACE_TEST_H2_DOCKER_SOCKET"));
        let sh = format!(
            "{d} ps -aq --filter name=^{p}- | xargs -r {d} rm -f; \
             {d} volume ls -q --filter name=^{p}_ | xargs -r {d} volume rm; \
             {d} network ls -q --filter name=^{p}_ | xargs -r {d} network rm"
        );
        let _ = Command::new("sh").arg("-c").arg(sh).output();
    }
}

/// Names of the running containers with this prefix on an engine.
fn running(mut docker: Command, prefix: &str) -> Vec<String> {
    let out = docker
        .args(["ps", "--format", "{{.Names}}", "--filter"])
        .arg(format!("name=^{prefix}-"))
        .output()
        .expect("docker ps");
    let mut names: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect();
    names.sort();
    names
}

/// The `wp_*` databases of the MariaDB container `db` on an engine.
fn databases(mut docker: Command, db: &str) -> Vec<String> {
    let out = docker
        .args([
            "exec",
            db,
            "mariadb",
            "-N",
            "-e",
            "SHOW DATABASES LIKE 'wp\\_%'",
        ])
        .output()
        .expect("docker exec mariadb");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

/// The variables: hosts by key (`a`: host1, `b`: h2), sites, pins, strategy.
fn vars(
    prefix: &str,
    port: u16,
    hosts: &[&str],
    sites: &[&str],
    pinned: &[(&str, &str)],
) -> String {
    let (h1, p1) = env("TERRACE_TEST_SSH_HOST1")
        .rsplit_once(':')
        .map(|(a, p)| (a.to_string(), p.to_string()))
        .unwrap();
    let (h2, p2) = env("TERRACE_TEST_SSH_H2")
        .rsplit_once(':')
        .map(|(a, p)| (a.to_string(), p.to_string()))
        .unwrap();
    let all = [
        (
            "a",
            format!(
                r#"{{ address = "{h1}", port = {p1}, socket = "/var/run/docker.sock", memory = "1g" }}"#
            ),
        ),
        (
            "b",
            format!(
                r#"{{ address = "{h2}", port = {p2}, socket = "{}", memory = "1g" }}"#,
                env("TERRACE_TEST_H2_DOCKER_SOCKET")
            ),
        ),
    ];
    let hosts: Vec<String> = all
        .iter()
        .filter(|(k, _)| hosts.contains(k))
        .map(|(k, v)| format!("{k} = {v}"))
        .collect();
    let sites: Vec<String> = sites.iter().map(|s| format!("{s} = \"256m\"")).collect();
    let pinned: Vec<String> = pinned
        .iter()
        .map(|(s, h)| format!("{s} = \"{h}\""))
        .collect();
    format!(
        "hosts = {{\n  {}\n}}\nsites = {{ {} }}\npinned = {{ {} }}\nstrategy = \"spread\"\nprefix = \"{prefix}\"\ndb_port = {port}\nssh_user = \"{}\"\nssh_key = \"{}\"\nknown_hosts = \"{}\"\n",
        hosts.join("\n  "),
        sites.join(", "),
        pinned.join(", "),
        env("TERRACE_TEST_SSH_USER"),
        env("TERRACE_TEST_SSH_KEY"),
        env("TERRACE_TEST_SSH_KNOWN_HOSTS"),
    )
}

#[test]
fn tenants_are_placed_by_capacity_across_two_hosts_and_stay_where_they_are() {
    let prefix = unique("mh");
    let _clean = (Cleanup(prefix.clone()), CleanupH2(prefix.clone()));
    let port = free_port();
    let example = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/multi-host-farm/main.hcl"),
    )
    .unwrap();
    let p = Project::new(&allow_destroying_services(&example));
    let password = format!("pw{}", std::process::id());
    let run = |args: &[&str], vars_text: &str| {
        let file = p.path().join("test.tfvars");
        std::fs::write(&file, vars_text).unwrap();
        let file = file.display().to_string();
        let mut all = args.to_vec();
        all.extend(["--var-file", file.as_str()]);
        p.terrace_env(&all, &[("TERRACE_VAR_db_admin_password", &password)])
    };
    let local = || Command::new("docker");
    let wp = |s: &str| format!("{prefix}-wp-{s}");

    // One host (1 GiB, 512 MiB of it the MariaDB): s1 and s2 fill it.
    let one = vars(&prefix, port, &["a"], &["s1", "s2"], &[]);
    let plan = run(&["plan"], &one).expect_code(0);
    assert!(
        plan.stdout.contains(r#"host.web["a"] (docker.web["a"]):"#)
            && plan.stdout.contains("of 1.0 GiB declared"),
        "{}",
        plan.stdout
    );
    run(&["apply", "--auto-approve"], &one).expect_code(0);
    assert_eq!(
        running(local(), &format!("{prefix}-wp")),
        [wp("s1"), wp("s2")]
    );
    assert_eq!(
        databases(local(), &format!("{prefix}-db-a")),
        ["wp_s1", "wp_s2"]
    );
    let placements = &p.state()["placements"];
    assert_eq!(placements[r#"tenant.site["s1"]"#], r#"host.web["a"]"#);
    assert_eq!(placements[r#"tenant.site["s2"]"#], r#"host.web["a"]"#);

    // A second, empty host: "spread" would prefer it, yet nobody moves.
    let two = vars(&prefix, port, &["a", "b"], &["s1", "s2"], &[]);
    let plan = run(&["plan", "--detailed-exitcode"], &two).expect_code(2);
    assert!(
        !plan.stdout.contains("tenant.site"),
        "a tenant moved:\n{}",
        plan.stdout
    );
    assert!(
        plan.stdout.contains(r#"service.db["b"].container"#),
        "{}",
        plan.stdout
    );
    run(&["apply", "--auto-approve"], &two).expect_code(0);

    // Host a is full: the next tenant lands on b, its database on b's MariaDB.
    let three = vars(&prefix, port, &["a", "b"], &["s1", "s2", "s3"], &[]);
    let plan = run(&["plan", "--detailed-exitcode"], &three).expect_code(2);
    assert!(
        !plan.stdout.contains(r#"tenant.site["s1"]"#),
        "{}",
        plan.stdout
    );
    run(&["apply", "--auto-approve"], &three).expect_code(0);
    assert_eq!(running(h2_docker(), &format!("{prefix}-wp")), [wp("s3")]);
    assert_eq!(
        running(local(), &format!("{prefix}-wp")),
        [wp("s1"), wp("s2")]
    );
    assert_eq!(databases(h2_docker(), &format!("{prefix}-db-b")), ["wp_s3"]);
    assert_eq!(
        databases(local(), &format!("{prefix}-db-a")),
        ["wp_s1", "wp_s2"]
    );
    assert_eq!(
        p.state()["placements"][r#"tenant.site["s3"]"#],
        r#"host.web["b"]"#
    );
    run(&["plan", "--detailed-exitcode"], &three).expect_code(0);

    // Pinning one more tenant on the full host over-fills it: refused before anything
    // is applied, naming the host; s5 (which would fit on b) is not created either.
    let over = vars(
        &prefix,
        port,
        &["a", "b"],
        &["s1", "s2", "s3", "s4", "s5"],
        &[("s4", "a")],
    );
    let refused = run(&["apply", "--auto-approve"], &over);
    assert_ne!(refused.code, 0, "{}", refused.all());
    assert!(
        refused.all().contains(r#"host.web["a"] is over-full"#),
        "{}",
        refused.all()
    );
    assert_eq!(
        running(local(), &format!("{prefix}-wp")),
        [wp("s1"), wp("s2")]
    );
    assert_eq!(running(h2_docker(), &format!("{prefix}-wp")), [wp("s3")]);
    run(&["plan", "--detailed-exitcode"], &three).expect_code(0);

    // An explicit host different from the recorded one is a move: the plan changes the
    // tenant's resources to b's engine and MariaDB (planned only here), nobody else's.
    let moved = vars(
        &prefix,
        port,
        &["a", "b"],
        &["s1", "s2", "s3"],
        &[("s2", "b")],
    );
    let plan = run(&["plan", "--detailed-exitcode"], &moved).expect_code(2);
    assert!(
        plan.stdout.contains(r#"tenant.site["s2"].app"#),
        "{}",
        plan.stdout
    );
    assert!(
        plan.stdout.contains(r#"tenant.site["s2"].database"#),
        "{}",
        plan.stdout
    );
    assert!(
        !plan.stdout.contains(r#"tenant.site["s1"]"#),
        "{}",
        plan.stdout
    );
    assert!(
        !plan.stdout.contains(r#"tenant.site["s3"]"#),
        "{}",
        plan.stdout
    );

    // A tenant that leaves the configuration leaves the placements too.
    let fewer = vars(&prefix, port, &["a", "b"], &["s1", "s2"], &[]);
    run(&["apply", "--auto-approve"], &fewer).expect_code(0);
    assert_eq!(
        running(h2_docker(), &format!("{prefix}-wp")),
        Vec::<String>::new()
    );
    let placements = p.state()["placements"].clone();
    assert!(
        placements.get(r#"tenant.site["s3"]"#).is_none(),
        "{placements:#}"
    );
    assert_eq!(placements[r#"tenant.site["s2"]"#], r#"host.web["a"]"#);

    run(&["destroy", "--auto-approve", "--include-services"], &fewer).expect_code(0);
    assert!(running(local(), &prefix).is_empty());
    assert!(running(h2_docker(), &prefix).is_empty());
    assert!(p.state().get("placements").is_none(), "{:#}", p.state());
}
