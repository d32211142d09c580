//! Benchmark: how terrace's cost grows with the number of tenants, against the real
//! local PostgreSQL (start it with scripts/services.sh; scripts/bench.sh does it all).
//!
//! Prints medians and ratios:
//! - a no-change `plan` with 10 vs 100 tenants (batched probes: should stay near 1x);
//! - `apply` of 40 tenants with --parallelism 1 vs the default 10.
//!
//! Timings are figures to read, not assertions: these machines are shared and noisy.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_terrace");

fn project(dir: &Path, prefix: &str, n: usize) {
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
    std::fs::write(dir.join("main.hcl"), hcl).unwrap();
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
    let runs = 7;
    let tag = std::process::id() % 10_000;

    // 1. No-change plan: 10 vs 100 tenants.
    let mut plan_medians = Vec::new();
    for n in [10usize, 100] {
        let dir = tempfile::tempdir().unwrap();
        project(dir.path(), &format!("bp{tag}_{n}_"), n);
        terrace(dir.path(), &["apply", "--auto-approve"]);
        let times: Vec<Duration> = (0..runs)
            .map(|_| terrace(dir.path(), &["plan", "--detailed-exitcode"]))
            .collect();
        let m = median(times);
        println!(
            "no-change plan, {n:>3} tenants ({:>3} resources): median {:>7.1} ms over {runs} runs",
            n * 3,
            ms(m)
        );
        plan_medians.push(m);
        terrace(dir.path(), &["destroy", "--auto-approve"]);
    }
    println!(
        "  ratio 100/10 tenants: {:.2}x  (10x the tenants; batched probes keep this near 1x)",
        plan_medians[1].as_secs_f64() / plan_medians[0].as_secs_f64()
    );

    // 2. Apply of 40 tenants: serial vs concurrent.
    let n = 40;
    let mut apply_medians = Vec::new();
    for parallelism in ["1", "10"] {
        let mut times = Vec::new();
        for run in 0..3 {
            let dir = tempfile::tempdir().unwrap();
            project(dir.path(), &format!("ba{tag}_{parallelism}_{run}_"), n);
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
}
