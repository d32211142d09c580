//! End to end against the real local Docker engine: `examples/ephemeral-clones` (seed
//! 003) — a shared MariaDB container, a read-only log shipper, a clone added with
//! `terrace instance add --ttl`, applied, then expired by moving the clock: its app
//! container removed, its database dumped and dropped, and not created again.
//!
//! The observability host (Loki and Grafana stand-ins) is scripts/second-host.sh's h2,
//! reached over SSH with its own Docker engine; the log shipper on the clone host pushes
//! to its Loki.
//!
//! Needs `scripts/docker-engine.sh`, `scripts/images.sh`, `scripts/ssh-hosts.sh` and
//! `scripts/second-host.sh` (scripts/test.sh runs them all).

mod common;

use std::process::Command;

use common::{free_port, unique, Cleanup, Project};

const ADMIN_PASSWORD: &str = "clones-admin-Pw7";

fn docker(args: &[&str]) -> (bool, String) {
    docker_at(None, args)
}

/// The Docker CLI against the local engine, or another engine's socket.
fn docker_at(socket: Option<&str>, args: &[&str]) -> (bool, String) {
    let mut cmd = Command::new("docker");
    if let Some(s) = socket {
        cmd.arg("-H").arg(format!("unix://{s}"));
    }
    let out = cmd.args(args).output().expect("docker CLI");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).trim().to_string(),
    )
}

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set: run scripts/test.sh"))
}

/// Removes what the test left on the observability host's engine.
struct ObservabilityCleanup {
    socket: String,
    prefix: String,
}

impl Drop for ObservabilityCleanup {
    fn drop(&mut self) {
        let s = Some(self.socket.as_str());
        for c in ["loki", "grafana"] {
            docker_at(s, &["rm", "-f", &format!("{}-{c}", self.prefix)]);
        }
        docker_at(s, &["network", "rm", &format!("{}_obs", self.prefix)]);
        docker_at(s, &["volume", "rm", &format!("{}_loki_data", self.prefix)]);
    }
}

#[test]
fn a_clone_lives_for_its_ttl_then_is_dumped_and_removed() {
    let prefix = unique("ec").replace('_', "");
    let _cleanup = Cleanup(prefix.clone());
    let hcl = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/ephemeral-clones/main.hcl"
    ))
    .unwrap();
    // The test ends by destroying the shared services too.
    let p = Project::new(&common::allow_destroying_services(&hcl));
    let port = free_port().to_string();
    // The observability host: h2, its own engine; Loki on a port of its own per run.
    let h2 = env("TERRACE_TEST_SSH_H2");
    let (h2_address, h2_port) = h2.split_once(':').expect("address:port");
    let h2_socket = env("TERRACE_TEST_H2_DOCKER_SOCKET");
    let _obs_cleanup = ObservabilityCleanup {
        socket: h2_socket.clone(),
        prefix: prefix.clone(),
    };
    let loki_port = free_port().to_string();
    std::fs::write(
        p.path().join("test.tfvars"),
        format!(
            "observability = {{ address = \"{h2_address}\", port = {h2_port}, user = \"{}\", docker_socket = \"{h2_socket}\" }}\nssh_key = \"{}\"\nknown_hosts = \"{}\"\n",
            env("TERRACE_TEST_SSH_USER"),
            env("TERRACE_TEST_SSH_KEY"),
            env("TERRACE_TEST_SSH_KNOWN_HOSTS"),
        ),
    )
    .unwrap();
    let var_file = p.path().join("test.tfvars").display().to_string();
    let vars = [
        format!("prefix={prefix}"),
        format!("db_port={port}"),
        format!("loki_port={loki_port}"),
    ];
    let run = |now: &str, args: &[&str]| {
        let mut all: Vec<&str> = args.to_vec();
        all.extend(["--var-file", var_file.as_str()]);
        for v in &vars {
            all.push("--var");
            all.push(v);
        }
        p.terrace_env(
            &all,
            &[
                ("TERRACE_VAR_db_admin_password", ADMIN_PASSWORD),
                ("TERRACE_NOW", now),
            ],
        )
    };
    let clone = "pr_42";
    p.terrace(&["instance", "add", "clones", clone, "--ttl", "2h"])
        .expect_code(0);

    let t0 = "2029-03-01T10:00:00Z";
    let first = run(t0, &["apply", "--auto-approve"]).expect_code(0);
    // A 2h ttl is within the default 24h horizon: the plan shows when it will end.
    assert!(
        first.stdout.contains(
            "# tenant.clone[\"pr_42\"] expires at 2029-03-01T12:00:00Z (ttl 2h from its creation by this apply)"
        ),
        "{}",
        first.stdout
    );
    let app = format!("{prefix}-pr-42");
    assert_eq!(
        docker(&["inspect", "-f", "{{.State.Running}}", &app]),
        (true, "true".into())
    );
    // The log shipper reads the engine's log directory, read-only.
    let (ok, mounts) = docker(&[
        "inspect",
        "-f",
        "{{range .Mounts}}{{.Destination}} {{.RW}}{{end}}",
        &format!("{prefix}-log-shipper"),
    ]);
    assert!(ok);
    assert_eq!(mounts, "/logs false");
    // Loki and Grafana run on the observability host's engine, not on the clone host's;
    // the shipper on the clone host reaches Loki there.
    let obs = Some(h2_socket.as_str());
    for c in ["loki", "grafana"] {
        let name = format!("{prefix}-{c}");
        assert_eq!(
            docker_at(obs, &["inspect", "-f", "{{.State.Running}}", &name]),
            (true, "true".into()),
            "{name} on the observability host"
        );
        assert!(
            !docker(&["inspect", &name]).0,
            "{name} not on the clone host"
        );
    }
    let reach = format!("echo | nc -w 5 {h2_address} {loki_port} >/dev/null");
    let shipper = format!("{prefix}-log-shipper");
    assert!(
        docker(&["exec", &shipper, "sh", "-c", &reach]).0,
        "the log shipper reaches Loki on the observability host"
    );

    // Two hours later, the cleanup job removes the clone and keeps the services.
    let t1 = "2029-03-01T12:00:01Z";
    let cleanup = run(t1, &["apply", "--auto-approve"]).expect_code(0);
    let out = &cleanup.stdout;
    assert!(out.contains("Dumped before dropping:"), "{out}");
    assert!(
        out.contains(
            "Expired: tenant.clone[\"pr_42\"] (expired at 2029-03-01T12:00:00Z): 4 object(s) removed"
        ),
        "{out}"
    );
    assert!(!docker(&["inspect", &app]).0, "the app container is gone");
    assert_eq!(
        docker(&[
            "inspect",
            "-f",
            "{{.State.Running}}",
            &format!("{prefix}-db")
        ]),
        (true, "true".into())
    );
    let dumps = std::fs::read_dir(p.path().join(".terrace/backups"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect::<Vec<_>>();
    assert!(dumps.iter().any(|d| d.contains("wp_pr_42")), "{dumps:?}");

    // Still listed in clones.d, never created again.
    let replan = run(t1, &["plan", "--detailed-exitcode"]).expect_code(0);
    assert!(
        replan.stdout.contains("the configuration still lists it"),
        "{}",
        replan.stdout
    );

    run(t1, &["destroy", "--auto-approve", "--include-services"]).expect_code(0);
}
