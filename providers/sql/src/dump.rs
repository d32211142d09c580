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

/// Writes a dump of database `db` into `dir` and returns its path.
pub(crate) async fn dump_database(
    server: &SqlServer,
    socket: Option<&Path>,
    address: &Address,
    db: &str,
    dir: &Path,
) -> ProviderResult<PathBuf> {
    let fail = |message: String| ProviderError::Operation {
        address: address.clone(),
        message: format!("refusing to drop database {db:?} without a dump first: {message}"),
    };
    std::fs::create_dir_all(dir)
        .map_err(|e| fail(format!("cannot create {}: {e}", dir.display())))?;
    // Nanoseconds keep two drops of the same name apart.
    let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%S%.9fZ");
    let path = dir.join(format!("{db}-{stamp}.sql"));
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .map_err(|e| fail(format!("cannot create {}: {e}", path.display())))?;

    // Reach the server the way the provider does: a forwarded socket, or host and port.
    let (program, args, password_var) = match server.engine {
        SqlEngine::Mysql => {
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
            args.extend([
                format!("--user={}", server.admin_user),
                "--single-transaction".to_string(),
                "--routines".to_string(),
                "--events".to_string(),
                "--databases".to_string(),
                db.to_string(),
            ]);
            (mysql_dump_tool(), args, "MYSQL_PWD")
        }
        SqlEngine::Postgres => {
            // A directory as host means "the socket in it" to PostgreSQL clients.
            let host = match socket.and_then(Path::parent) {
                Some(dir) => dir.display().to_string(),
                None => server.address.clone(),
            };
            let args = vec![
                format!("--host={host}"),
                format!("--port={}", server.port),
                format!("--username={}", server.admin_user),
                "--no-password".to_string(),
                "--create".to_string(),
                format!("--dbname={db}"),
            ];
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
            let _ = std::fs::remove_file(&path);
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
        let _ = std::fs::remove_file(&path);
        let stderr = String::from_utf8_lossy(&output.stderr);
        let stderr = stmt::scrub(stderr.trim(), [&server.admin_password]);
        return Err(fail(format!("{program} failed: {stderr}")));
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
