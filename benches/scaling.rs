//! Benchmark: how terrace's cost grows with the number of tenants, against the real
//! local PostgreSQL (start it with scripts/services.sh; scripts/bench.sh does it all).
//!
//! Prints medians and ratios:
//! - a no-change `plan` with 10 vs 100 tenants (batched probes: should stay near 1x);
//! - `apply` of 40 tenants with --parallelism 1 vs the default 10;
//! - a no-change `plan` with 3 vs 30 app containers on the local Docker engine;
//! - a no-change `plan` with 5 vs 50 files on one SSH host.
//!
//! The Docker and SSH sections run when their services are up (scripts/bench.sh starts
//! everything) and say so when they are skipped.
//!
//! `cargo bench --bench scaling -- ssh-files` runs only the SSH files sweep instead: a
//! no-change `plan` of 1, 20 and 200 files on one SSH host whose master is already
//! connected (reused, as users' `ControlPersist`), against the same project with no files
//! (nothing to ask the host: terrace's local cost), so the figure read is the SSH cost
//! above local. Needs only the sshd test hosts (`source target/ssh/env`).
//!
//! `cargo bench --bench scaling -- tenants` runs the tenant sweep instead: N = 10, 100,
//! 1,000 and 10,000 tenants (`BENCH_MAX_N` stops it earlier), each one database, user and
//! grant on the local MariaDB (SQL only at every N: PostgreSQL's `DROP DATABASE` takes
//! about a second here, Docker containers are bound by the engine, and one kind of
//! tenant keeps the ratios comparable). For each N: first apply, no-change plan, drift
//! plan (1 % of the databases dropped by hand) and destroy, each with
//! wall time, terrace's CPU (user + system, from `wait4`) and peak RSS, and the ratios
//! between successive N. It prints a Markdown table for BENCHMARKS.md.
//!
//! `cargo bench --bench scaling -- docker-tenants` runs the same sweep with seed 001's
//! tenant (a database with its user and grant, a Docker volume and a container using
//! both: five resources) at N = 10, 100 and 1,000, where the engine is the bound.
//!
//! Timings are figures to read, not assertions: these machines are shared and noisy.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_terrace");

/// `n` tenants on the local PostgreSQL. No `connection_limit`: 100 tenants' limits would
/// over-commit the test server's 100 connections, and plan refuses that.
fn pg_hcl(prefix: &str, n: usize) -> String {
    let apps: Vec<String> = (0..n).map(|i| format!("{prefix}{i} = 5")).collect();
    let hcl = format!(
        r#"
variable "pg_admin_password" {{
  type      = string
  sensitive = true
}}
variable "apps" {{
  default = {{ {} }}
}}
service "pg" {{
  engine   = "postgres"
  endpoint = {{ address = "127.0.0.1", port = 5432 }}
  admin    = {{ user = "terrace_admin", password = var.pg_admin_password }}
}}
tenant "app" {{
  for_each = var.apps
  database {{
    service          = service.pg
    name             = each.key
  }}
}}
"#,
        apps.join(", ")
    );
    hcl
}

fn terrace(dir: &Path, args: &[&str]) -> Duration {
    let start = Instant::now();
    let status = Command::new(BIN)
        .arg("-C")
        .arg(dir)
        .args(args)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .status()
        .expect("run terrace");
    let took = start.elapsed();
    assert!(status.success(), "terrace {args:?} failed");
    took
}

/// Times a no-change plan of `hcl(n)` for each `n`, applying first and destroying after;
/// prints the medians and the ratio of the last to the first.
fn plan_scaling(what: &str, sizes: [usize; 2], hcl: impl Fn(usize) -> String) {
    let runs = 7;
    let mut medians = Vec::new();
    for n in sizes {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("main.hcl"), hcl(n)).unwrap();
        terrace(dir.path(), &["apply", "--auto-approve"]);
        let times: Vec<Duration> = (0..runs)
            .map(|_| terrace(dir.path(), &["plan", "--detailed-exitcode"]))
            .collect();
        let m = median(times);
        println!(
            "no-change plan, {n:>3} {what}: median {:>7.1} ms over {runs} runs",
            ms(m)
        );
        medians.push(m);
        terrace(
            dir.path(),
            &["destroy", "--auto-approve", "--include-services"],
        );
    }
    println!(
        "  ratio {}/{} {what}: {:.2}x",
        sizes[1],
        sizes[0],
        medians[1].as_secs_f64() / medians[0].as_secs_f64()
    );
}

/// One run of the terrace binary: wall time, its own CPU time and its peak RSS.
#[derive(Debug, Clone, Copy)]
struct Cost {
    wall: Duration,
    cpu: Duration,
    rss_kb: u64,
}

/// Runs terrace in `dir` and measures it; `expect` is the exit code it must return.
fn measured(dir: &Path, args: &[&str], expect: i32) -> Cost {
    let start = Instant::now();
    let child = Command::new(BIN)
        .arg("-C")
        .arg(dir)
        .args(args)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("run terrace");
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: `rusage` is plain data that wait4 fills in; `pid` is our own child, which
    // nothing else waits for (`child` is dropped without waiting).
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let waited = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    let wall = start.elapsed();
    drop(child);
    assert_eq!(waited, pid, "wait4 failed");
    let code = if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        -1
    };
    assert_eq!(code, expect, "terrace {args:?} exited with {code}");
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    Cost {
        wall,
        cpu: tv(usage.ru_utime) + tv(usage.ru_stime),
        // Linux reports kilobytes.
        rss_kb: usage.ru_maxrss as u64,
    }
}

/// The median of each measure separately.
fn median_cost(runs: &[Cost]) -> Cost {
    Cost {
        wall: median(runs.iter().map(|c| c.wall).collect()),
        cpu: median(runs.iter().map(|c| c.cpu).collect()),
        rss_kb: {
            let mut v: Vec<u64> = runs.iter().map(|c| c.rss_kb).collect();
            v.sort();
            v[v.len() / 2]
        },
    }
}

/// `n` tenants named `{prefix}{i}` on the local MariaDB, each with `tenant_body`;
/// `extra` comes before the tenant block.
fn tenants_hcl(prefix: &str, n: usize, extra: &str, tenant_body: &str) -> String {
    let apps: Vec<String> = (0..n).map(|i| format!("\"{prefix}{i}\"")).collect();
    format!(
        r#"
variable "mysql_admin_password" {{
  type      = string
  sensitive = true
}}
variable "apps" {{
  default = [{}]
}}
service "db" {{
  engine   = "mariadb"
  endpoint = {{ address = "127.0.0.1", port = 3306 }}
  admin    = {{ user = "terrace_admin", password = var.mysql_admin_password }}
}}
{extra}
tenant "app" {{
  for_each = toset(var.apps)
  database {{
    service = service.db
    name    = each.key
  }}
{tenant_body}
}}
"#,
        apps.join(", ")
    )
}

/// One database, user and grant per tenant.
fn mysql_hcl(prefix: &str, n: usize) -> String {
    tenants_hcl(prefix, n, "", "")
}

/// Seed 001's shape per tenant: a database (with its user and grant), a volume and a
/// container using both (five resources); `init` so that destroy does not wait out a
/// stop timeout.
fn docker_hcl(prefix: &str, n: usize) -> String {
    let image = r#"image "busybox" {
  name = "terrace/busybox:1"
  pull = "never"
}"#;
    let body = r#"  volume "data" {
    name = "${each.key}_data"
  }
  app {
    name    = each.key
    image   = image.busybox
    command = ["sleep", "86400"]
    init    = true
    env = {
      DB_NAME     = self.database.name
      DB_PASSWORD = self.database.password
    }
    mounts = [{ source = self.volume.data.name, target = "/data" }]
  }"#;
    tenants_hcl(prefix, n, image, body)
}

/// Drops `databases` by hand, as drift for the next plan.
fn drop_databases(databases: &[String]) {
    use sqlx::Connection;
    let password = std::env::var("TERRACE_VAR_mysql_admin_password").expect("MariaDB password");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let opts = sqlx::mysql::MySqlConnectOptions::new()
            .host("127.0.0.1")
            .port(3306)
            .username("terrace_admin")
            .password(&password);
        let mut conn = tokio::time::timeout(
            Duration::from_secs(10),
            sqlx::MySqlConnection::connect_with(&opts),
        )
        .await
        .expect("MariaDB connect timed out")
        .expect("connect to MariaDB");
        for d in databases {
            // Generated names: letters, digits and underscores only.
            assert!(d.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'));
            let sql = format!("DROP DATABASE `{d}`");
            tokio::time::timeout(
                Duration::from_secs(30),
                sqlx::raw_sql(sqlx::AssertSqlSafe(sql)).execute(&mut conn),
            )
            .await
            .expect("DROP DATABASE timed out")
            .expect("DROP DATABASE");
        }
    });
}

/// What each tenant of a sweep has.
#[derive(Clone, Copy, PartialEq)]
enum Workload {
    /// A MariaDB database, user and grant.
    Sql,
    /// The same plus a Docker volume and a container ([`docker_hcl`]).
    Docker,
}

impl Workload {
    fn resources_per_tenant(self) -> usize {
        match self {
            Workload::Sql => 3,
            Workload::Docker => 5,
        }
    }
}

/// The tenant sweep: first apply, no-change plan, drift plan and destroy per N.
fn tenants_sweep(tag: u32, workload: Workload) {
    if std::env::var("TERRACE_VAR_mysql_admin_password").is_err() {
        eprintln!("set up first: scripts/services.sh && source target/services.env (or run scripts/bench.sh)");
        std::process::exit(1);
    }
    let max_n: usize = std::env::var("BENCH_MAX_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    // Containers are bound by the engine (a few per second): up to 1,000.
    let largest = match workload {
        Workload::Sql => 10_000,
        Workload::Docker => 1_000,
    };
    let sizes: Vec<usize> = [10, 100, 1_000, 10_000]
        .into_iter()
        .filter(|n| *n <= max_n.min(largest))
        .collect();
    let phases = ["first apply", "no-change plan", "drift plan", "destroy"];
    let mut rows: Vec<(usize, [Cost; 4])> = Vec::new();
    let mut floors: Vec<(usize, Duration, usize)> = Vec::new();
    for &n in &sizes {
        let dir = tempfile::tempdir().unwrap();
        let prefix = format!("bt{tag}_{n}_");
        let hcl = match workload {
            Workload::Sql => mysql_hcl(&prefix, n),
            Workload::Docker => docker_hcl(&prefix, n),
        };
        std::fs::write(dir.path().join("main.hcl"), hcl).unwrap();
        eprintln!("{n} tenants: first apply");
        let apply = measured(dir.path(), &["apply", "--auto-approve"], 0);
        let plan_runs = if n <= 1_000 { 5 } else { 3 };
        eprintln!("{n} tenants: no-change plan x{plan_runs}");
        let plans: Vec<Cost> = (0..plan_runs)
            .map(|_| measured(dir.path(), &["plan", "--detailed-exitcode"], 0))
            .collect();
        if workload == Workload::Docker {
            let (floor, requests) = engine_floor(&prefix, plan_runs);
            floors.push((n, floor, requests));
        }
        let drifted: Vec<String> = (0..n)
            .step_by(100)
            .map(|i| format!("{prefix}{i}"))
            .collect();
        drop_databases(&drifted);
        eprintln!(
            "{n} tenants: drift plan ({} databases dropped by hand) x{plan_runs}",
            drifted.len()
        );
        let drifts: Vec<Cost> = (0..plan_runs)
            .map(|_| measured(dir.path(), &["plan", "--detailed-exitcode"], 2))
            .collect();
        eprintln!("{n} tenants: destroy");
        let destroy = measured(dir.path(), &["destroy", "--auto-approve"], 0);
        rows.push((
            n,
            [apply, median_cost(&plans), median_cost(&drifts), destroy],
        ));
    }
    println!();
    match workload {
        Workload::Sql => println!(
            "Tenant sweep: MariaDB only (one database, user and grant per tenant), release build;"
        ),
        Workload::Docker => println!(
            "Tenant sweep: a MariaDB database, user and grant, a Docker volume and a container per tenant, release build;"
        ),
    }
    println!("plans are medians of 5 runs (3 at 10,000), apply and destroy one run each.");
    println!("CPU is terrace's own (user + system); RSS its peak.");
    println!();
    println!("| tenants (resources) | command | wall | terrace CPU | CPU / wall | peak RSS | wall ratio | CPU ratio |");
    println!("|---|---|---|---|---|---|---|---|");
    for (i, (n, costs)) in rows.iter().enumerate() {
        for (p, c) in phases.iter().zip(costs) {
            let (wr, cr) = match i.checked_sub(1).map(|j| &rows[j]) {
                Some((pn, prev)) => {
                    let prev = prev[phases.iter().position(|x| x == p).unwrap()];
                    (
                        format!(
                            "{:.2}x for {}x",
                            c.wall.as_secs_f64() / prev.wall.as_secs_f64(),
                            n / pn
                        ),
                        format!(
                            "{:.2}x",
                            c.cpu.as_secs_f64() / prev.cpu.as_secs_f64().max(1e-6)
                        ),
                    )
                }
                None => (String::new(), String::new()),
            };
            println!(
                "| {n} ({}) | {p} | {} | {} | {:.1} % | {} MB | {wr} | {cr} |",
                n * workload.resources_per_tenant(),
                fmt_secs(c.wall),
                fmt_secs(c.cpu),
                100.0 * c.cpu.as_secs_f64() / c.wall.as_secs_f64(),
                c.rss_kb / 1024,
            );
        }
    }
    if !floors.is_empty() {
        println!();
        println!("The engine's own floor for the same no-change plan: its requests (info, 3 lists, one inspect per");
        println!("container) sent 16 at once over reused connections by one curl process, median of the same runs.");
        println!();
        println!("| tenants | requests | engine alone | terrace's no-change plan | terrace above the floor |");
        println!("|---|---|---|---|---|");
        for ((n, floor, requests), (_, costs)) in floors.iter().zip(&rows) {
            let plan = costs[1].wall;
            println!(
                "| {n} | {requests} | {} | {} | {} |",
                fmt_secs(*floor),
                fmt_secs(plan),
                fmt_secs(plan.saturating_sub(*floor)),
            );
        }
    }
}

/// What the engine alone takes to answer the requests of a no-change plan of the
/// sweep's containers: the engine's info, three list calls (images, networks, volumes;
/// the containers are found by their recorded ids) and one inspect per container, 16 at once
/// over reused connections (terrace's `INSPECT_CONCURRENCY`), sent by one curl process
/// and nothing else. Returns the median of `runs` and the number of requests.
fn engine_floor(prefix: &str, runs: usize) -> (Duration, usize) {
    const SOCKET: &str = "/var/run/docker.sock";
    let list = Command::new("curl")
        .args(["-sf", "--unix-socket", SOCKET])
        .arg("http://localhost/containers/json?all=1")
        .output()
        .expect("run curl");
    assert!(list.status.success(), "curl could not list containers");
    let listed: Vec<serde_json::Value> = serde_json::from_slice(&list.stdout).unwrap();
    let ids: Vec<&str> = listed
        .iter()
        .filter(|c| {
            c["Names"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|n| n.as_str().is_some_and(|n| n.contains(prefix)))
        })
        .filter_map(|c| c["Id"].as_str())
        .collect();
    let mut urls: Vec<String> = ["info", "images/json", "networks", "volumes"]
        .iter()
        .map(|path| format!("http://localhost/{path}"))
        .collect();
    urls.extend(
        ids.iter()
            .map(|id| format!("http://localhost/containers/{id}/json")),
    );
    let config = tempfile::NamedTempFile::new().unwrap();
    let lines: String = urls
        .iter()
        .map(|u| format!("url = \"{u}\"\noutput = \"/dev/null\"\n"))
        .collect();
    std::fs::write(config.path(), lines).unwrap();
    let times: Vec<Duration> = (0..runs)
        .map(|_| {
            let start = Instant::now();
            let status = Command::new("curl")
                .args(["-sf", "--parallel", "--parallel-max", "16"])
                .args(["--unix-socket", SOCKET, "-K"])
                .arg(config.path())
                // In parallel mode curl draws a progress meter even when silent.
                .stderr(Stdio::null())
                .status()
                .expect("run curl");
            assert!(status.success(), "curl's requests failed");
            start.elapsed()
        })
        .collect();
    (median(times), urls.len())
}

/// Milliseconds below 10 s, else seconds.
fn fmt_secs(d: Duration) -> String {
    if d < Duration::from_secs(10) {
        format!("{:.0} ms", ms(d))
    } else {
        format!("{:.1} s", d.as_secs_f64())
    }
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// The SSH test host's variables, when the sshd test hosts are set up.
fn ssh_env() -> Option<(String, String, String, String)> {
    Some((
        std::env::var("TERRACE_TEST_SSH_HOST1").ok()?,
        std::env::var("TERRACE_TEST_SSH_KEY").ok()?,
        std::env::var("TERRACE_TEST_SSH_KNOWN_HOSTS").ok()?,
        std::env::var("TERRACE_TEST_SSH_USER").ok()?,
    ))
}

/// A project of `n` files on the SSH test host, in `dir` on the host.
fn ssh_files_hcl(env: &(String, String, String, String), dir: &str, n: usize) -> String {
    let (hostport, key, kh, user) = env;
    let (address, port) = hostport.rsplit_once(':').unwrap();
    let keys: Vec<String> = (0..n).map(|i| format!("\"f{i}\"")).collect();
    format!(
        r#"
host "h" {{
  address       = "{address}"
  port          = {port}
  user          = "{user}"
  identity_file = "{key}"
  known_hosts   = "{kh}"
  become        = true
}}
file "f" {{
  for_each = toset([{}])
  host     = host.h
  path     = "{dir}/${{each.key}}-{n}.conf"
  content  = "setting = ${{each.key}}\n"
  mode     = "0644"
}}
"#,
        keys.join(", ")
    )
}

/// No-change plans of 1, 20 and 200 files on one SSH host with its master already
/// connected, against the project with no files (the local cost): medians and the
/// difference, which is what the SSH host costs above local.
fn ssh_files_sweep(tag: u32) {
    let Some(env) = ssh_env() else {
        println!("(SSH files sweep skipped: source target/ssh/env, or run scripts/bench.sh)");
        return;
    };
    let runs = 11;
    let dir = format!("/tmp/terrace-bench-files-{tag}");
    std::fs::create_dir_all(&dir).unwrap();
    let mut local = None;
    for n in [0, 1, 20, 200] {
        let project = tempfile::tempdir().unwrap();
        std::fs::write(
            project.path().join("main.hcl"),
            ssh_files_hcl(&env, &dir, n),
        )
        .unwrap();
        terrace(project.path(), &["apply", "--auto-approve"]);
        // The apply connected the host; one more plan warms the caches.
        terrace(project.path(), &["plan", "--detailed-exitcode"]);
        let runs: Vec<Cost> = (0..runs)
            .map(|_| measured(project.path(), &["plan", "--detailed-exitcode"], 0))
            .collect();
        let c = median_cost(&runs);
        let m = c.wall;
        match local {
            None => {
                println!(
                    "no-change plan, no files (local reference): median {:>7.1} ms (terrace CPU {:>5.1} ms) over {} runs",
                    ms(m),
                    ms(c.cpu),
                    runs.len()
                );
                local = Some(m);
            }
            Some(l) => println!(
                "no-change plan, {n:>3} files on one SSH host (master reused): median {:>7.1} ms (terrace CPU {:>5.1} ms) over {} runs, {:>+7.1} ms above local",
                ms(m),
                ms(c.cpu),
                runs.len(),
                ms(m) - ms(l)
            ),
        }
        terrace(project.path(), &["destroy", "--auto-approve"]);
    }
    let _ = std::fs::remove_dir_all(&dir);
}

fn main() {
    if std::env::args().any(|a| a == "ssh-files") {
        ssh_files_sweep(std::process::id() % 10_000);
        return;
    }
    if std::env::var("TERRACE_VAR_pg_admin_password").is_err() {
        eprintln!("set up first: scripts/services.sh && source target/services.env (or run scripts/bench.sh)");
        std::process::exit(1);
    }
    let tag = std::process::id() % 10_000;
    if std::env::args().any(|a| a == "docker-tenants") {
        tenants_sweep(tag, Workload::Docker);
        return;
    }
    if std::env::args().any(|a| a == "tenants") {
        tenants_sweep(tag, Workload::Sql);
        return;
    }

    // 1. No-change plan: 10 vs 100 tenants (3 SQL resources each).
    plan_scaling("tenants on PostgreSQL", [10, 100], |n| {
        pg_hcl(&format!("bp{tag}_{n}_"), n)
    });

    // 2. Apply of 40 tenants: serial vs concurrent.
    let n = 40;
    let mut apply_medians = Vec::new();
    for parallelism in ["1", "10"] {
        let mut times = Vec::new();
        for run in 0..3 {
            let dir = tempfile::tempdir().unwrap();
            let hcl = pg_hcl(&format!("ba{tag}_{parallelism}_{run}_"), n);
            std::fs::write(dir.path().join("main.hcl"), hcl).unwrap();
            times.push(terrace(
                dir.path(),
                &["apply", "--auto-approve", "--parallelism", parallelism],
            ));
            terrace(dir.path(), &["destroy", "--auto-approve"]);
        }
        let m = median(times);
        println!("apply {n} tenants ({} resources), --parallelism {parallelism:>2}: median {:>7.1} ms over 3 runs", n * 3, ms(m));
        apply_medians.push(m);
    }
    println!(
        "  speed-up parallelism 10 vs 1: {:.2}x",
        apply_medians[0].as_secs_f64() / apply_medians[1].as_secs_f64()
    );

    // 3. Docker: containers are listed once per engine, then inspected concurrently.
    if Path::new("/var/run/docker.sock").exists() {
        plan_scaling("app containers", [3, 30], |n| {
            let keys: Vec<String> = (0..n).map(|i| format!("\"c{i}\"")).collect();
            format!(
                r#"
image "busybox" {{
  name = "terrace/busybox:1"
  pull = "never"
}}
tenant "b{tag}" {{
  for_each = toset([{}])
  app {{
    name    = "bench{tag}-${{each.key}}"
    image   = image.busybox
    command = ["sleep", "3600"]
    memory  = "8m"
  }}
}}
"#,
                keys.join(", ")
            )
        });
    } else {
        println!("(Docker section skipped: no engine at /var/run/docker.sock)");
    }

    // 4. SSH: one remote command probes every file of a host.
    match ssh_env() {
        Some(env) => {
            let dir = format!("/tmp/terrace-bench-{tag}");
            std::fs::create_dir_all(&dir).unwrap();
            plan_scaling("files on one host", [5, 50], |n| {
                ssh_files_hcl(&env, &dir, n)
            });
            let _ = std::fs::remove_dir_all(&dir);
        }
        None => println!("(SSH section skipped: source target/ssh/env, or run scripts/bench.sh)"),
    }
}
