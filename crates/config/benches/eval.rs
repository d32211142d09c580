//! Benchmark: how the cost of evaluating a configuration grows with its size
//! (`cargo bench -p terrace-config --bench eval`; `scripts/bench.sh` runs it too).
//!
//! Times [`terrace_config::load`] (parsing, evaluation, lowering, resolution) over
//! in-memory files, in a release build:
//! - a `locals` block of 1,000, 10,000 and 20,000 attributes, each referring to the
//!   one before it;
//! - a `tenant` block (one database each: three resources per instance) whose
//!   `for_each` is `toset()` of a list of 10,000 and 100,000 names, every name twice;
//! - the same tenants (1,000 to 100,000) from a map, each reading its entry as
//!   `local.apps[each.key].db` (an instance's context holds only its own entry: a copy
//!   of the whole map per instance made this quadratic), and the same through
//!   `lookup(local.apps, each.key, null).db`;
//! - the same from a map written as one object literal (1,000 and 10,000): hcl-edit's
//!   parser compares each key with every one before it, so this one is quadratic
//!   (BENCHMARKS.md).
//!
//! Each size runs in a child process, so a size that does not finish within the cap
//! (`EVAL_BENCH_CAP_SECS`, default 60) is reported as such instead of stalling the
//! benchmark. Prints the median of `EVAL_BENCH_RUNS` runs (default 3) and the ratio
//! between successive sizes: linear evaluation shows ratios near the ratio of sizes.
//! Figures are read, never asserted: the machines are shared and noisy.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use terrace_config::{load, MemoryEnv, VarInputs};
use terrace_provider::{find_schema, ResourceSchema};

/// The terrace binary's allocator (src/main.rs), so the figures are those users get.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn schemas(type_name: &str) -> Option<&'static ResourceSchema> {
    find_schema(terrace_provider_docker::SCHEMAS, type_name)
        .or_else(|| find_schema(terrace_provider_ssh::SCHEMAS, type_name))
        .or_else(|| find_schema(terrace_provider_redis::SCHEMAS, type_name))
}

/// `locals { l0 = 0, l1 = local.l0 + 1, ... }`.
fn locals_hcl(n: usize) -> String {
    let mut out = String::from("locals {\n  l0 = 0\n");
    for i in 1..n {
        out.push_str(&format!("  l{i} = local.l{} + 1\n", i - 1));
    }
    out.push_str("}\n");
    out
}

/// A PostgreSQL service and one `tenant` block with one database per instance:
/// `apps` is the variable's default, `for_each` and `name` the tenant's expressions.
fn tenants_hcl(apps: &str, for_each: &str, name: &str) -> String {
    format!(
        r#"
variable "pg_admin_password" {{
  default   = "bench-secret"
  sensitive = true
}}
variable "apps" {{
  default = {apps}
}}
service "pg" {{
  engine   = "postgres"
  endpoint = {{ address = "127.0.0.1", port = 5432 }}
  admin    = {{ user = "terrace_admin", password = var.pg_admin_password }}
}}
tenant "app" {{
  for_each = {for_each}
  database {{
    service = service.pg
    name    = {name}
  }}
}}
"#
    )
}

/// `n` tenants with one database each, from `toset()` of a list naming each twice.
fn for_each_hcl(n: usize) -> String {
    let names: Vec<String> = (0..n).map(|i| format!("\"t{i}\"")).collect();
    let names = names.join(", ");
    tenants_hcl(
        &format!("[{names}, {names}]"),
        "toset(var.apps)",
        "each.key",
    )
}

/// `n` tenants from a map, each reading its own entry by key
/// (`local.apps[each.key].db`): a lookup in a value as large as the instance count.
/// The map is built from a list, so that the figure is evaluation's alone (see
/// [`object_literal_hcl`]).
fn lookup_hcl(n: usize) -> String {
    let entries: Vec<String> = (0..n)
        .map(|i| format!("{{ name = \"t{i}\", db = \"d{i}\" }}"))
        .collect();
    let mut out = tenants_hcl(
        &format!("[{}]", entries.join(", ")),
        "local.apps",
        "local.apps[each.key].db",
    );
    out.push_str("locals {\n  apps = { for a in var.apps : a.name => a }\n}\n");
    out
}

/// [`lookup_hcl`] with the function: `lookup(local.apps, each.key, null).db`.
fn lookup_fn_hcl(n: usize) -> String {
    lookup_hcl(n).replace(
        "local.apps[each.key].db",
        "lookup(local.apps, each.key, null).db",
    )
}

/// The same tenants from a map written as one object literal (`var.apps[each.key].db`
/// over `default = { t0 = { db = "d0" }, ... }`): hcl-edit's parser checks every key
/// of an object against those before it.
fn object_literal_hcl(n: usize) -> String {
    let entries: Vec<String> = (0..n)
        .map(|i| format!("t{i} = {{ db = \"d{i}\" }}"))
        .collect();
    tenants_hcl(
        &format!("{{ {} }}", entries.join(", ")),
        "var.apps",
        "var.apps[each.key].db",
    )
}

/// Loads one generated configuration; returns the time and the resource count.
fn run_one(case: &str, n: usize) -> (Duration, usize) {
    let text = match case {
        "locals" => locals_hcl(n),
        "for_each" => for_each_hcl(n),
        "lookup" => lookup_hcl(n),
        "lookup_fn" => lookup_fn_hcl(n),
        "object_literal" => object_literal_hcl(n),
        other => panic!("unknown case {other}"),
    };
    let dir = Path::new("/bench");
    let files = vec![(dir.join("main.hcl"), text)];
    let start = Instant::now();
    let project = load(
        dir,
        files,
        &VarInputs::default(),
        &MemoryEnv::default(),
        &schemas,
    )
    .unwrap_or_else(|e| panic!("the benchmark configuration does not load: {e:?}"));
    (start.elapsed(), project.resources.len())
}

/// Runs one size in a child process; `None` if it did not finish within `cap`.
fn run_child(case: &str, n: usize, cap: Duration) -> Option<Duration> {
    let exe: PathBuf = std::env::current_exe().expect("the benchmark's own path");
    let mut child = Command::new(exe)
        .args(["--one", case, &n.to_string()])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("the benchmark starts itself");
    let start = Instant::now();
    loop {
        if child.try_wait().expect("wait for the child").is_some() {
            break;
        }
        if start.elapsed() > cap {
            // Only this child, which this process started.
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().expect("the child's output");
    assert!(out.status.success(), "{case} {n} failed");
    let micros: u64 = String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .expect("the child prints microseconds");
    Some(Duration::from_micros(micros))
}

fn env_num(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--one") {
        let (case, n) = (&args[i + 1], args[i + 2].parse().expect("a size"));
        let (t, resources) = run_one(case, n);
        eprintln!("  {case} {n}: {resources} resources");
        println!("{}", t.as_micros());
        return;
    }
    let cap = Duration::from_secs(env_num("EVAL_BENCH_CAP_SECS", 60));
    let runs = env_num("EVAL_BENCH_RUNS", 3) as usize;
    println!("evaluation (terrace_config::load), median of {runs} runs, cap {cap:?} per run");
    for (case, sizes) in [
        ("locals", &[1_000, 10_000, 20_000][..]),
        ("for_each", &[10_000, 100_000][..]),
        ("lookup", &[1_000, 10_000, 100_000][..]),
        ("lookup_fn", &[1_000, 10_000, 100_000][..]),
        ("object_literal", &[1_000, 10_000][..]),
    ] {
        let mut previous: Option<(usize, Duration)> = None;
        for &n in sizes {
            let mut times = Vec::new();
            for _ in 0..runs {
                match run_child(case, n, cap) {
                    Some(t) => times.push(t),
                    None => break,
                }
            }
            if times.len() < runs {
                println!("{case:>14} {n:>7}: did not finish within {cap:?}");
                // Larger sizes would not either.
                break;
            }
            times.sort();
            let median = times[runs / 2];
            let ratio = previous.map_or(String::new(), |(pn, pt)| {
                format!(
                    "  ratio {:.2}x for {}x the size",
                    median.as_secs_f64() / pt.as_secs_f64(),
                    n / pn
                )
            });
            println!(
                "{case:>14} {n:>7}: {:>9.1} ms{ratio}",
                median.as_secs_f64() * 1e3
            );
            previous = Some((n, median));
        }
    }
}
