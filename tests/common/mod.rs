//! Shared harness for end-to-end tests: run the real `terrace` binary on a temporary
//! project against the real local servers started by `scripts/services.sh`.

#![allow(dead_code)] // each test binary uses a different subset

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

use sqlx::mysql::MySqlPoolOptions;
use sqlx::postgres::PgPoolOptions;
use sqlx::{MySqlPool, PgPool};

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: run scripts/services.sh and `source target/services.env` (scripts/test.sh does both)")
    })
}

/// A name no other test (or earlier run) uses: lowercase, short, a valid SQL identifier.
pub fn unique(prefix: &str) -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!(
        "{prefix}_{}_{}_{}",
        std::process::id() % 100_000,
        N.fetch_add(1, Ordering::Relaxed),
        nanos % 10_000
    )
}

/// The PostgreSQL service block every PG test project uses.
pub fn pg_service() -> String {
    r#"
variable "pg_admin_password" {
  type      = string
  sensitive = true
}
service "pg" {
  engine   = "postgres"
  endpoint = { address = "127.0.0.1", port = 5432 }
  admin    = { user = "terrace_admin", password = var.pg_admin_password }
}
"#
    .to_string()
}

/// The MariaDB service block every MySQL test project uses.
pub fn mysql_service() -> String {
    r#"
variable "mysql_admin_password" {
  type      = string
  sensitive = true
}
service "db" {
  engine   = "mariadb"
  endpoint = { address = "127.0.0.1", port = 3306 }
  admin    = { user = "terrace_admin", password = var.mysql_admin_password }
}
"#
    .to_string()
}

/// A throwaway project directory.
pub struct Project {
    dir: tempfile::TempDir,
}

/// The result of one terrace run.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// Everything printed, for assertions that do not care which stream.
    pub fn all(&self) -> String {
        format!("{}\n{}", self.stdout, self.stderr)
    }

    /// Panics with the output unless the exit code is `code`.
    pub fn expect_code(self, code: i32) -> Self {
        assert_eq!(
            self.code, code,
            "expected exit {code}\n--- stdout\n{}\n--- stderr\n{}",
            self.stdout, self.stderr
        );
        self
    }
}

impl Project {
    /// A project with `main.hcl` = `hcl`.
    pub fn new(hcl: &str) -> Project {
        let p = Project {
            dir: tempfile::tempdir().unwrap(),
        };
        p.write(hcl);
        p
    }

    /// Replaces `main.hcl`.
    pub fn write(&self, hcl: &str) {
        std::fs::write(self.dir.path().join("main.hcl"), hcl).unwrap();
    }

    /// The project directory.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The state file path.
    pub fn state_path(&self) -> PathBuf {
        self.dir.path().join("terrace.state.json")
    }

    /// Runs terrace with `args` in this project, no stdin, no colour.
    pub fn terrace(&self, args: &[&str]) -> Run {
        self.terrace_env(args, &[])
    }

    /// Like [`Project::terrace`], with extra environment variables.
    pub fn terrace_env(&self, args: &[&str], envs: &[(&str, &str)]) -> Run {
        let out: Output = Command::new(env!("CARGO_BIN_EXE_terrace"))
            .arg("-C")
            .arg(self.dir.path())
            .args(args)
            .env("NO_COLOR", "1")
            .env(
                "TERRACE_VAR_pg_admin_password",
                env("TERRACE_VAR_pg_admin_password"),
            )
            .env(
                "TERRACE_VAR_mysql_admin_password",
                env("TERRACE_VAR_mysql_admin_password"),
            )
            // The caller's variables win over the defaults above.
            .envs(envs.iter().copied())
            .stdin(Stdio::null())
            .output()
            .expect("run terrace");
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// `apply --auto-approve`, which must succeed.
    pub fn apply(&self) -> Run {
        self.terrace(&["apply", "--auto-approve"]).expect_code(0)
    }

    /// A whole lifecycle with extra environment variables: apply, a plan that finds no
    /// changes, destroy; each must succeed.
    pub fn apply_plan_destroy(&self, envs: &[(&str, &str)]) {
        self.terrace_env(&["apply", "--auto-approve"], envs)
            .expect_code(0);
        self.terrace_env(&["plan", "--detailed-exitcode"], envs)
            .expect_code(0);
        self.terrace_env(&["destroy", "--auto-approve"], envs)
            .expect_code(0);
    }

    /// `plan --detailed-exitcode`.
    pub fn plan(&self) -> Run {
        self.terrace(&["plan", "--detailed-exitcode"])
    }

    /// The state file, parsed.
    pub fn state(&self) -> serde_json::Value {
        let text = std::fs::read_to_string(self.state_path()).expect("state file exists");
        serde_json::from_str(&text).expect("state file is valid JSON")
    }

    /// One resource's attributes from the state file.
    pub fn state_attrs(&self, address: &str) -> serde_json::Value {
        let state = self.state();
        state["resources"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["address"] == address)
            .unwrap_or_else(|| panic!("{address} not in state: {state:#}"))["attributes"]
            .clone()
    }
}

/// Admin pool on the local PostgreSQL.
pub async fn pg_admin() -> PgPool {
    PgPoolOptions::new()
        .max_connections(2)
        .connect(&env("TERRACE_TEST_PG_URL"))
        .await
        .expect("connect to PostgreSQL as admin")
}

/// Admin pool on the local MariaDB.
pub async fn mysql_admin() -> MySqlPool {
    MySqlPoolOptions::new()
        .max_connections(2)
        .connect(&env("TERRACE_TEST_MYSQL_URL"))
        .await
        .expect("connect to MariaDB as admin")
}

/// Runs an async block on a fresh runtime (the tests themselves are synchronous so that
/// they can shell out to terrace freely).
pub fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

/// An example's configuration with its services' protection lifted, for tests that end
/// by destroying the services they made (services are `prevent_destroy` by default).
pub fn allow_destroying_services(hcl: &str) -> String {
    hcl.replace(
        "\n  container {",
        "\n  lifecycle {\n    prevent_destroy = false\n  }\n\n  container {",
    )
}

/// A loopback port nothing listens on right now (the OS picks it).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// Removes every Docker container (`PREFIX-*`), volume and network (`PREFIX_*`) a test
/// created with this name prefix, even when the test failed.
pub struct Cleanup(pub String);

impl Drop for Cleanup {
    fn drop(&mut self) {
        let p = &self.0;
        let sh = format!(
            "docker ps -aq --filter name=^{p}- | xargs -r docker rm -f; \
             docker volume ls -q --filter name=^{p}_ | xargs -r docker volume rm; \
             docker network ls -q --filter name=^{p}_ | xargs -r docker network rm"
        );
        let _ = Command::new("sh").arg("-c").arg(sh).output();
    }
}

/// util-linux `flock(1)` holding the lock file `lock` (after writing `info` into it, if given)
/// until dropped: another terrace holding the state lock. `None` without `flock`.
pub struct Holder(Child);

impl Holder {
    pub fn new(lock: &Path, info: Option<serde_json::Value>) -> Option<Holder> {
        let flock = ["/usr/bin/flock", "/bin/flock"]
            .into_iter()
            .find(|p| Path::new(p).exists())?;
        if let Some(info) = info {
            std::fs::write(lock, info.to_string()).unwrap();
        }
        let mut child = Command::new(flock)
            .arg(lock)
            .args(["sh", "-c", "echo LOCKED; cat >/dev/null"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line.trim(), "LOCKED");
        Some(Holder(child))
    }
}

impl Drop for Holder {
    fn drop(&mut self) {
        drop(self.0.stdin.take());
        let _ = self.0.wait();
    }
}

/// A tenant with one database `db` on the test PostgreSQL (`service.pg`).
pub fn pg_tenant_hcl(db: &str) -> String {
    format!(
        "{}\ntenant \"t\" {{\n  database {{\n    service = service.pg\n    name = \"{db}\"\n  }}\n}}\n",
        pg_service()
    )
}

/// `text` as one line of words, without miette's gutter bars: messages wrap at the
/// terminal width, so tests match what they say, not where it breaks.
pub fn flat(text: &str) -> String {
    text.split_whitespace()
        .filter(|w| *w != "|")
        .collect::<Vec<_>>()
        .join(" ")
}

/// What a process prints once it holds a state lease (see [`spawn_lease_holder`]).
const LEASE_MARKER: &str = "<<child holds the lease>>";

/// The child half of [`spawn_lease_holder`]: call it from a `#[test]` named as the one
/// the parent gives. In the child (the variable `child_env` is set to a backend URL) it
/// takes that state's lock, says so, and holds it until killed; elsewhere it returns.
pub fn hold_lease_if_child(child_env: &str) {
    let Ok(url) = std::env::var(child_env) else {
        return;
    };
    let backend = terrace_state::Backend::parse(&url, "unused").unwrap();
    let _lock = backend.lock("apply").expect("child takes the lease");
    println!("\n{LEASE_MARKER}");
    std::thread::sleep(std::time::Duration::from_secs(600));
}

/// Another process holding the lease of the state at `url`: this test binary run again,
/// only its test `child_test` (which calls [`hold_lease_if_child`] with `child_env`).
/// Returns once the child holds the lease; kill it to let the lease expire.
pub fn spawn_lease_holder(child_test: &str, child_env: &str, url: &str) -> Child {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", child_test, "--nocapture", "--test-threads=1"])
        .env(child_env, url)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if line.trim() == LEASE_MARKER {
                let _ = tx.send(());
            }
        }
    });
    if rx.recv_timeout(std::time::Duration::from_secs(60)).is_err() {
        let _ = child.kill();
        panic!("child did not report holding the lease");
    }
    child
}

/// A `host` block for an sshd test host at `hostport` (`scripts/ssh-hosts.sh`'s login user
/// and key, `become = true`), with `known_hosts` and `extra` attribute lines.
pub fn ssh_host_block(name: &str, hostport: &str, known_hosts: &str, extra: &str) -> String {
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
