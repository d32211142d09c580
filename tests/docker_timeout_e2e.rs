//! The real binary against Docker engines that stop answering (`TERRACE_DOCKER_TIMEOUT`
//! set to 1 s): a plan fails within the bound, naming the engine, the call and the
//! bound; an apply whose create was done by the engine but never answered fails that
//! step, and the next apply adopts the container instead of making a second one.
//!
//! The engines are real sockets (`providers/docker/tests/common/stall.rs`): one that
//! never answers, and a relay to the real engine that loses the answer to creates.
//! Needs `scripts/docker-engine.sh` and `scripts/images.sh` (scripts/test.sh runs both).

mod common;
#[path = "../providers/docker/tests/common/stall.rs"]
mod stall;

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{unique, Cleanup, Project};
use expect_test::expect;
use stall::{Hung, Relay};

/// Far below the 30 s default and the 600 s one call waited before: a run that takes
/// this long did not use the 1 s bound.
const PROMPT: Duration = Duration::from_secs(20);

/// One container (and the image it runs) on the local engine.
fn project(name: &str) -> String {
    format!(
        r#"image "busybox" {{
  name = "terrace/busybox:1"
  pull = "never"
}}

service "app" {{
  engine = "container"
  lifecycle {{
    prevent_destroy = false
  }}
  container {{
    name    = "{name}"
    image   = image.busybox
    command = ["sleep", "3600"]
  }}
}}
"#
    )
}

/// The real engine's socket.
fn engine() -> PathBuf {
    match std::env::var("DOCKER_HOST") {
        Ok(h) if h.starts_with("unix://") => PathBuf::from(&h["unix://".len()..]),
        _ => PathBuf::from("/var/run/docker.sock"),
    }
}

/// Runs terrace against the engine at `socket` with a 1 s bound; returns the run and
/// how long it took.
fn run_at(p: &Project, socket: &std::path::Path, args: &[&str]) -> (common::Run, Duration) {
    let host = format!("unix://{}", socket.display());
    let started = Instant::now();
    let run = p.terrace_env(
        args,
        &[("DOCKER_HOST", &host), ("TERRACE_DOCKER_TIMEOUT", "1s")],
    );
    (run, started.elapsed())
}

/// `text` with the apply's total time (`…, in 1.0s.`) as `<time>`.
fn without_duration(text: &str) -> String {
    text.lines()
        .map(
            |l| match (l.starts_with("Apply failed"), l.rfind(", in ")) {
                (true, Some(at)) => format!("{}, in <time>.", &l[..at]),
                _ => l.to_string(),
            },
        )
        .collect::<Vec<_>>()
        .join("\n")
}

fn containers_named(name: &str) -> usize {
    let out = Command::new("docker")
        .args(["ps", "-a", "-q", "--filter", &format!("name=^/{name}$")])
        .output()
        .expect("docker CLI");
    String::from_utf8_lossy(&out.stdout).lines().count()
}

#[test]
fn a_plan_against_a_hung_engine_fails_within_the_bound_naming_it() {
    let hung = Hung::start();
    let p = Project::new(&project("tt-never-made"));
    let (run, took) = run_at(&p, &hung.socket, &["plan"]);
    let run = run.expect_code(1);
    assert!(took < PROMPT, "plan took {took:?}");
    let stderr = run
        .stderr
        .replace(&hung.socket.display().to_string(), "<socket>");
    expect![[r#"
        error: docker.local could not be reached, its resources were not planned: unix://<socket>: negotiating the API version with the engine: the Docker engine got no answer within 1s (TERRACE_DOCKER_TIMEOUT). It accepted the request, so it is hung or overloaded: check it on its host (`docker info`; restart the engine if that hangs too), or allow more time with TERRACE_DOCKER_TIMEOUT (e.g. TERRACE_DOCKER_TIMEOUT=2m).
        Not planned this run (2):
          image.busybox
          service.app.container
    "#]].assert_eq(&stderr);
}

#[test]
fn an_apply_whose_create_was_never_answered_converges_on_the_next_run() {
    let prefix = unique("tto").replace('_', "");
    let _cleanup = Cleanup(prefix.clone());
    let name = format!("{prefix}-app");
    let p = Project::new(&project(&name));

    let relay = Relay::start(&engine(), "/containers/create");
    let (run, took) = run_at(&p, &relay.socket, &["apply", "--auto-approve"]);
    let run = run.expect_code(1);
    assert!(took < PROMPT, "apply took {took:?}");
    assert_eq!(relay.stalled(), 1);
    let stderr = without_duration(&run.stderr)
        .replace(&relay.socket.display().to_string(), "<socket>")
        .replace(&name, "<name>");
    expect![[r#"
        Apply failed: 1 step(s) failed, 0 skipped because they depend on a failed step. Done so far: 1 added, 0 changed, 0 destroyed (saved in the state), in <time>.
          failed:  service.app.container: creating container "<name>": the Docker engine at unix://<socket> got no answer within 1s (TERRACE_DOCKER_TIMEOUT). It accepted the request, so it is hung or overloaded: check it on its host (`docker info`; restart the engine if that hangs too), or allow more time with TERRACE_DOCKER_TIMEOUT (e.g. TERRACE_DOCKER_TIMEOUT=2m). The call may still take effect on the engine: the next plan reads what it did."#]].assert_eq(&stderr);
    // The engine made it; the state says it may exist (pending), not that it does not.
    assert_eq!(containers_named(&name), 1);
    let state = p.state();
    let record = state["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["address"] == "service.app.container")
        .unwrap_or_else(|| panic!("no record of the container: {state:#}"));
    assert_eq!(record["pending"], true, "{record:#}");

    // The next run, against an engine that answers, adopts it: still one container,
    // now running, and a plan after that is empty.
    let (run, _) = run_at(&p, &engine(), &["apply", "--auto-approve"]);
    let run = run.expect_code(0);
    assert_eq!(containers_named(&name), 1, "{}", run.stdout);
    let running = Command::new("docker")
        .args(["inspect", "-f", "{{.State.Running}}", &name])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&running.stdout).trim(), "true");
    let (plan, _) = run_at(&p, &engine(), &["plan", "--detailed-exitcode"]);
    plan.expect_code(0);
}
