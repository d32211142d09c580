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
//! Timings are figures to read, not assertions: these machines are shared and noisy.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_terrace");

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
    connection_limit = each.value
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

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn main() {
    if std::env::var("TERRACE_VAR_pg_admin_password").is_err() {
        eprintln!("set up first: scripts/services.sh && source target/services.env (or run scripts/bench.sh)");
        std::process::exit(1);
    }
    let tag = std::process::id() % 10_000;

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
    match (
        std::env::var("TERRACE_TEST_SSH_HOST1"),
        std::env::var("TERRACE_TEST_SSH_KEY"),
        std::env::var("TERRACE_TEST_SSH_KNOWN_HOSTS"),
        std::env::var("TERRACE_TEST_SSH_USER"),
    ) {
        (Ok(hostport), Ok(key), Ok(kh), Ok(user)) => {
            let (address, port) = hostport.rsplit_once(':').unwrap();
            let dir = format!("/tmp/terrace-bench-{tag}");
            std::fs::create_dir_all(&dir).unwrap();
            plan_scaling("files on one host", [5, 50], |n| {
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
}}
"#,
                    keys.join(", ")
                )
            });
            let _ = std::fs::remove_dir_all(&dir);
        }
        _ => println!("(SSH section skipped: source target/ssh/env, or run scripts/bench.sh)"),
    }
}
