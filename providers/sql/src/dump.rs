//! Dumps a database before it is dropped: data is never destroyed silently.
//!
//! The dump runs the engine's own client tool on the machine running terrace
//! (`mariadb-dump`/`mysqldump`, `pg_dump`) against the same endpoint the provider uses, so
//! it works through an SSH forward too. The password goes to the tool in its environment
//! (`MYSQL_PWD`, `PGPASSWORD`), never on its command line. The file is created with mode
//! 0600 before anything is written to it. If the dump fails, the drop does not happen.

use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use terrace_provider::{Address, ProviderError, ProviderResult};

use crate::{stmt, SqlEngine, SqlServer};

/// Why a dump is taken, which decides what it holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Purpose {
    /// Before a drop: the whole database, with the statement that creates it.
    Drop,
    /// For a move: only what is inside the database, restored into the database the
    /// provider has just created on the new server (`mariadb DB < dump`, `psql -d DB`).
    Move,
}

/// Writes a dump of database `db` into `dir` and returns its path.
pub(crate) async fn dump_database(
    server: &SqlServer,
    socket: Option<&Path>,
    address: &Address,
    db: &str,
    dir: &Path,
) -> ProviderResult<PathBuf> {
    dump(server, socket, address, db, dir, Purpose::Drop).await
}

/// Writes a dump of database `db` for `purpose` into `dir` and returns its path.
pub(crate) async fn dump(
    server: &SqlServer,
    socket: Option<&Path>,
    address: &Address,
    db: &str,
    dir: &Path,
    purpose: Purpose,
) -> ProviderResult<PathBuf> {
    let fail = |message: String| ProviderError::Operation {
        address: address.clone(),
        message: match purpose {
            Purpose::Drop => {
                format!("refusing to drop database {db:?} without a dump first: {message}")
            }
            Purpose::Move => format!("cannot copy database {db:?} for its move: {message}"),
        },
    };
    std::fs::create_dir_all(dir)
        .map_err(|e| fail(format!("cannot create {}: {e}", dir.display())))?;
    // Nanoseconds keep two drops of the same name apart.
    let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%S%.9fZ");
    let path = match purpose {
        Purpose::Drop => dir.join(format!("{db}-{stamp}.sql")),
        Purpose::Move => dir.join(format!("{db}-move-{stamp}.sql")),
    };
    // Written under another name and renamed when complete: a run killed mid-dump
    // leaves a file that says it is partial, never one that looks like a full dump.
    let mut partial = path.clone().into_os_string();
    partial.push(".partial");
    let partial = PathBuf::from(partial);
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&partial)
        .map_err(|e| fail(format!("cannot create {}: {e}", partial.display())))?;

    // Reach the server the way the provider does: a forwarded socket, or host and port.
    let (program, args, password_var) = match server.engine {
        SqlEngine::Mysql => {
            let mut args = mysql_connection(server, socket);
            args.extend([
                "--single-transaction".to_string(),
                "--routines".to_string(),
                "--events".to_string(),
            ]);
            if purpose == Purpose::Drop {
                args.push("--databases".to_string());
            }
            args.push(db.to_string());
            (mysql_dump_tool(), args, "MYSQL_PWD")
        }
        SqlEngine::Postgres => {
            let mut args = pg_connection(server, socket);
            if purpose == Purpose::Drop {
                args.push("--create".to_string());
            }
            args.push(format!("--dbname={db}"));
            ("pg_dump".to_string(), args, "PGPASSWORD")
        }
    };
    let output = tokio::process::Command::new(&program)
        .args(&args)
        .env(password_var, server.admin_password.expose())
        // A server that accepts and never answers must not hang pg_dump's connection.
        // (MariaDB's dump tool has no such option; the provider's own connection,
        // which checks the database exists first, has already timed out there.)
        .env("PGCONNECT_TIMEOUT", "10")
        .kill_on_drop(true)
        .stdin(Stdio::null())
        .stdout(file)
        .stderr(Stdio::piped())
        // Not `output()`: tokio's re-pipes stdout, which must go to the file.
        .spawn();
    let output = match output {
        Ok(child) => child.wait_with_output().await,
        Err(e) => Err(e),
    };
    let output = match output {
        Ok(o) => o,
        Err(e) => {
            let _ = std::fs::remove_file(&partial);
            let package = match server.engine {
                SqlEngine::Mysql => "mariadb-client",
                SqlEngine::Postgres => "postgresql-client",
            };
            return Err(fail(format!(
                "cannot run {program}: {e} (install {package})"
            )));
        }
    };
    if !output.status.success() {
        let _ = std::fs::remove_file(&partial);
        let stderr = String::from_utf8_lossy(&output.stderr);
        let stderr = stmt::scrub(stderr.trim(), [&server.admin_password]);
        return Err(fail(format!("{program} failed: {stderr}")));
    }
    // On disk before the database goes: the dump tool wrote it, nothing synced it.
    let durable = std::fs::File::open(&partial)
        .and_then(|f| f.sync_all())
        .and_then(|()| terrace_provider::rename_durably(&partial, &path));
    if let Err(e) = durable {
        let _ = std::fs::remove_file(&partial);
        return Err(fail(format!("cannot keep {}: {e}", path.display())));
    }
    tracing::info!(%address, dump = %path.display(), "database dumped before drop");
    Ok(path)
}

/// `mariadb-dump` where it exists (MariaDB 11 drops the old name), else `mysqldump`.
fn mysql_dump_tool() -> String {
    let found = std::env::var_os("PATH").is_some_and(|paths| {
        std::env::split_paths(&paths).any(|p| p.join("mariadb-dump").is_file())
    });
    if found { "mariadb-dump" } else { "mysqldump" }.to_string()
}

/// The MariaDB/MySQL client options that reach the server the way the provider does.
fn mysql_connection(server: &SqlServer, socket: Option<&Path>) -> Vec<String> {
    let mut args = match socket {
        Some(path) => vec![
            format!("--socket={}", path.display()),
            "--protocol=SOCKET".to_string(),
        ],
        None => vec![
            format!("--host={}", server.address),
            format!("--port={}", server.port),
            "--protocol=TCP".to_string(),
        ],
    };
    args.push(format!("--user={}", server.admin_user));
    args
}

/// The PostgreSQL client options that reach the server the way the provider does.
fn pg_connection(server: &SqlServer, socket: Option<&Path>) -> Vec<String> {
    // A directory as host means "the socket in it" to PostgreSQL clients.
    let host = match socket.and_then(Path::parent) {
        Some(dir) => dir.display().to_string(),
        None => server.address.clone(),
    };
    vec![
        format!("--host={host}"),
        format!("--port={}", server.port),
        format!("--username={}", server.admin_user),
        "--no-password".to_string(),
    ]
}

/// How long a restore may take before it is stopped (and the move fails, keeping the
/// old database).
const RESTORE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(3600);

/// Restores a dump made for a move ([`Purpose::Move`]) into database `db`, which exists
/// and is empty, with the engine's client reading the dump on its standard input. The
/// password goes in the client's environment, never on its command line; the client
/// stops at the first error, which fails the restore.
pub(crate) async fn restore(
    server: &SqlServer,
    socket: Option<&Path>,
    address: &Address,
    db: &str,
    dump: &Path,
) -> ProviderResult<()> {
    let fail = |message: String| ProviderError::Operation {
        address: address.clone(),
        message: format!(
            "restoring {} into database {db:?} failed (the old database is kept): {message}",
            dump.display()
        ),
    };
    let input = std::fs::File::open(dump).map_err(|e| fail(format!("cannot read it: {e}")))?;
    let (program, args, password_var) = match server.engine {
        SqlEngine::Mysql => {
            let mut args = mysql_connection(server, socket);
            args.extend([
                "--connect-timeout=10".to_string(),
                "--batch".to_string(),
                format!("--database={db}"),
            ]);
            (mysql_client_tool(), args, "MYSQL_PWD")
        }
        SqlEngine::Postgres => {
            let mut args = pg_connection(server, socket);
            args.extend([
                "--quiet".to_string(),
                "--single-transaction".to_string(),
                "--set=ON_ERROR_STOP=1".to_string(),
                format!("--dbname={db}"),
            ]);
            ("psql".to_string(), args, "PGPASSWORD")
        }
    };
    let child = tokio::process::Command::new(&program)
        .args(&args)
        .env(password_var, server.admin_password.expose())
        .env("PGCONNECT_TIMEOUT", "10")
        .kill_on_drop(true)
        .stdin(input)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| fail(format!("cannot run {program}: {e}")))?;
    let output = tokio::time::timeout(RESTORE_TIMEOUT, child.wait_with_output())
        .await
        .map_err(|_| {
            fail(format!(
                "{program} did not finish within {}s",
                RESTORE_TIMEOUT.as_secs()
            ))
        })?
        .map_err(|e| fail(format!("{program} failed: {e}")))?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let stderr = stmt::scrub(stderr.trim(), [&server.admin_password]);
        return Err(fail(format!("{program} failed: {stderr}")));
    }
    tracing::info!(%address, dump = %dump.display(), "database restored for its move");
    Ok(())
}

/// `mariadb` where it exists (MariaDB 11 drops the old name), else `mysql`.
fn mysql_client_tool() -> String {
    let found = std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|p| p.join("mariadb").is_file()));
    if found { "mariadb" } else { "mysql" }.to_string()
}
