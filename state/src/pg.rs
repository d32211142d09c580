//! The PostgreSQL backend: named states in one database, shared by a team and CI.
//!
//! Four tables, created on first write (a role that only plans needs `SELECT` on them; one
//! that applies `INSERT`, `UPDATE` and `DELETE`, and `CREATE` on the schema only until they
//! exist; `docs/postgres-roles.md`):
//!
//! - `terrace_states (name, lineage, serial, document, updated_at)`: one row per named
//!   state; `document` is exactly the bytes the local backend would write (secrets
//!   encrypted when a key is configured).
//! - `terrace_state_history (name, serial, document, saved_at)`: the versions each write
//!   replaced, the last [`DEFAULT_HISTORY`] (or `?history=N`) per state; `terrace state
//!   history` lists them and `state restore SERIAL` writes one back as a new version.
//! - `terrace_state_journal (name, base_serial, seq, record)`: the write-ahead journal,
//!   one row per record, same lines and same replay as the local `.journal`.
//! - `terrace_state_locks (name, lock_id, who, pid, operation, since, expires_at)`: one
//!   lease per state. Taking the lock is one `INSERT ... ON CONFLICT DO UPDATE ... WHERE
//!   expires_at < now()`; the holder renews the lease every third of its length
//!   ([`DEFAULT_LEASE`], or `?lease=SECONDS`) from a background task, so a killed holder's
//!   lease expires and the next command proceeds. Every write checks, in its own
//!   transaction, that the lease is still ours (a holder whose lease was broken writes
//!   nothing). Nothing depends on the session (no session advisory locks, no temporary
//!   tables, no session `SET`, no named prepared statements: see [`query`]; no
//!   `extra_float_digits` startup parameter, which PgBouncer refuses by default), so it
//!   works through PgBouncer in transaction mode (tested with 1.18, `tests/pgbouncer_e2e.rs`).
//!
//! Every write is one transaction that locks the state's row and checks lineage and
//! serial first: a writer whose serial is stale is refused, never silently overwrites.
//!
//! The crate's API is synchronous; queries run on a small runtime of their own, so the
//! backend can be used from synchronous and asynchronous code alike, and every query has
//! a timeout ([`QUERY_TIMEOUT`]).

use std::future::Future;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::postgres::{PgArguments, PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::Row;

use crate::crypt::Keyring;
use crate::error::StateError;
use crate::format::{decode, encode, peek, State};
use crate::journal::{self, Header, JournalRecord, JOURNAL_VERSION};
use crate::lock::{ForceUnlocked, LockInfo};

/// How long a lease lasts without renewal, unless the URL says `?lease=SECONDS`.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(30);
/// How many replaced versions are kept per state, unless the URL says `?history=N`.
pub const DEFAULT_HISTORY: i64 = 20;
/// The longest any one database operation may take.
pub const QUERY_TIMEOUT: Duration = Duration::from_secs(15);

/// A named state in a PostgreSQL database.
#[derive(Clone)]
pub struct PgBackend {
    inner: Arc<Inner>,
    keys: Keyring,
    /// How long [`crate::Backend::lock`] waits for a held lease.
    pub(crate) lock_timeout: Duration,
}

struct Inner {
    name: String,
    /// `pg://user@host:port/db#name`: never the password.
    display: String,
    pool: PgPool,
    lease: Duration,
    history: i64,
}

/// How long closing the pool may take: the `Terminate` message needs no answer.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(2);

impl Drop for Inner {
    /// Ends the pool's sessions with `Terminate`: a connection merely dropped when the
    /// process exits is counted by the server as an abandoned session.
    fn drop(&mut self) {
        // On the runtime's own worker, `block` would wait for itself.
        if std::thread::current().name() == Some(RUNTIME_THREAD) {
            return;
        }
        let pool = self.pool.clone();
        let _ = block(&self.display, async move {
            let _ = tokio::time::timeout(CLOSE_TIMEOUT, pool.close()).await;
            Ok(())
        });
    }
}

impl std::fmt::Debug for PgBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.inner.display)
    }
}

impl PartialEq for PgBackend {
    fn eq(&self, other: &Self) -> bool {
        self.inner.display == other.inner.display && self.keys == other.keys
    }
}

impl Eq for PgBackend {}

/// A stored document and its journal rows (base serial, record).
type Stored = (String, Vec<(i64, String)>);

/// One entry of a state's history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryEntry {
    /// The serial of that version.
    pub serial: u64,
    /// When it was replaced.
    pub saved_at: DateTime<Utc>,
    /// How many resources it recorded.
    pub resources: u64,
}

/// The name of [`runtime`]'s worker thread.
const RUNTIME_THREAD: &str = "terrace-state-pg";

/// The runtime the queries run on: one for the process, never dropped (dropping a
/// runtime inside another one's task panics).
fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name(RUNTIME_THREAD)
            .enable_all()
            .build()
            .expect("a tokio runtime for the state backend")
    })
}

/// Runs `fut` on the backend's runtime and waits for it, with [`QUERY_TIMEOUT`].
fn block<T: Send + 'static>(
    location: &str,
    fut: impl Future<Output = Result<T, sqlx::Error>> + Send + 'static,
) -> Result<T, StateError> {
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    runtime().spawn(async move {
        let _ = tx.send(tokio::time::timeout(QUERY_TIMEOUT, fut).await);
    });
    match rx.recv() {
        Ok(Ok(Ok(v))) => Ok(v),
        Ok(Ok(Err(e))) => Err(db_error(location, &e)),
        Ok(Err(_)) => Err(StateError::Backend {
            location: location.to_string(),
            message: format!("no answer within {}s", QUERY_TIMEOUT.as_secs()),
        }),
        Err(_) => Err(StateError::Backend {
            location: location.to_string(),
            message: "the query task stopped".to_string(),
        }),
    }
}

fn db_error(location: &str, e: &sqlx::Error) -> StateError {
    let denied = e
        .as_database_error()
        .and_then(|d| d.code())
        .is_some_and(|c| c == "42501");
    let message = if denied {
        // A read-only role (CI plan jobs) reaching a command that writes.
        format!(
            "{e}: this role may not do that. `plan`, `drift`, `show` and `state list` \
             only read (SELECT on terrace_states, terrace_state_history, \
             terrace_state_journal, terrace_state_locks); `apply`, `destroy`, `import` and \
             the `state` commands that change it take the lock and write (INSERT, UPDATE, \
             DELETE on them too): use a role that may write the state (docs/postgres-roles.md)"
        )
    } else {
        e.to_string()
    };
    StateError::Backend {
        location: location.to_string(),
        message,
    }
}

/// Whether `e` says a table does not exist (nothing was ever written).
fn undefined_table(e: &sqlx::Error) -> bool {
    e.as_database_error()
        .and_then(|d| d.code())
        .is_some_and(|c| c == "42P01")
}

/// Commits a transaction that only read; a missing table (nothing was ever written)
/// reads as `empty`. Either way the transaction is ended before returning: one left
/// open when the process exits makes PgBouncer close its server connection.
async fn end_read<T>(
    tx: sqlx::Transaction<'static, sqlx::Postgres>,
    result: Result<T, sqlx::Error>,
    empty: T,
) -> Result<T, sqlx::Error> {
    match result {
        Ok(v) => {
            tx.commit().await?;
            Ok(v)
        }
        Err(e) if undefined_table(&e) => {
            tx.rollback().await?;
            Ok(empty)
        }
        Err(e) => Err(e),
    }
}

/// Every statement of the backend: an unnamed one, inside a transaction.
///
/// Through PgBouncer in transaction mode a client's consecutive transactions may run on
/// different server connections that other clients share. sqlx's named prepared
/// statements (`sqlx_s_1`, ...) would stay on a server connection after the transaction
/// (the next client's `sqlx_s_1` then fails with "already exists") and be missing on the
/// next one. An unnamed statement lives only until the next one is parsed, and since
/// every query here runs inside an explicit transaction, its parse and its execution
/// reach the same server connection. The cost on a direct connection: one parse per
/// query, for the few queries a command makes.
fn query(sql: &'static str) -> sqlx::query::Query<'static, sqlx::Postgres, PgArguments> {
    sqlx::query(sql).persistent(false)
}

impl PgBackend {
    /// A backend for the URL `pg://[user@]host[:port]/database?state=NAME[&lease=SECONDS]
    /// [&history=N]` (`postgres://` and `postgresql://` work too; other parameters go to
    /// the driver, e.g. `sslmode`). `default_name` names the state when the URL does not.
    /// The password should come from `PGPASSWORD` or `~/.pgpass`, not the URL, when the
    /// URL is a command-line argument. Connects lazily.
    pub fn from_url(url: &str, default_name: &str) -> Result<Self, StateError> {
        let bad = |message: String| StateError::Backend {
            location: "the backend URL".to_string(),
            message,
        };
        let rest = ["pg://", "postgres://", "postgresql://"]
            .iter()
            .find_map(|p| url.strip_prefix(p))
            .ok_or_else(|| bad("it must start with pg:// (or postgres://)".to_string()))?;
        let (base, query) = rest.split_once('?').unwrap_or((rest, ""));
        let mut name = default_name.to_string();
        let mut lease = DEFAULT_LEASE;
        let mut history = DEFAULT_HISTORY;
        let mut passed = Vec::new();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            match k {
                "state" => name = v.to_string(),
                "lease" => {
                    let s: f64 = v
                        .parse()
                        .ok()
                        .filter(|s: &f64| (1.0..=3600.0).contains(s))
                        .ok_or_else(|| bad(format!("lease={v}: give 1 to 3600 seconds")))?;
                    lease = Duration::from_secs_f64(s);
                }
                "history" => {
                    history = v
                        .parse()
                        .ok()
                        .filter(|n| (1..=10_000).contains(n))
                        .ok_or_else(|| bad(format!("history={v}: give 1 to 10000")))?;
                }
                _ => passed.push(pair),
            }
        }
        check_name(&name).map_err(bad)?;
        let mut driver_url = format!("postgres://{base}");
        if !passed.is_empty() {
            driver_url.push('?');
            driver_url.push_str(&passed.join("&"));
        }
        let options = PgConnectOptions::from_str(&driver_url)
            .map_err(|e| bad(format!("cannot parse it: {e}")))?
            // PgBouncer refuses startup parameters it does not know unless configured
            // to ignore them, and floats here are only read in binary form.
            .extra_float_digits(None);
        let display = format!(
            "pg://{}@{}:{}/{}?state={name}",
            options.get_username(),
            options.get_host(),
            options.get_port(),
            options.get_database().unwrap_or_default()
        );
        let pool = {
            let _guard = runtime().enter();
            PgPoolOptions::new()
                .max_connections(3)
                .acquire_timeout(QUERY_TIMEOUT)
                .connect_lazy_with(options)
        };
        Ok(PgBackend {
            inner: Arc::new(Inner {
                name,
                display,
                pool,
                lease,
                history,
            }),
            keys: Keyring::none(),
            lock_timeout: Duration::ZERO,
        })
    }

    /// This backend with its secrets sealed by `keys` (see [`Keyring`]).
    pub fn with_keys(mut self, keys: Keyring) -> Self {
        self.keys = keys;
        self
    }

    /// The keys this backend uses.
    pub fn keys(&self) -> &Keyring {
        &self.keys
    }

    /// Where the state is, for messages: `pg://user@host:port/db?state=NAME`.
    pub fn location(&self) -> &str {
        &self.inner.display
    }

    /// The state's name.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    fn path(&self) -> PathBuf {
        PathBuf::from(&self.inner.display)
    }

    /// Whether the state exists (has been written at least once).
    pub fn exists(&self) -> Result<bool, StateError> {
        Ok(self.fetch()?.is_some())
    }

    /// The stored document and the journal rows, read in one snapshot; `None` if the
    /// state was never written.
    fn fetch(&self) -> Result<Option<Stored>, StateError> {
        let pool = self.inner.pool.clone();
        let name = self.inner.name.clone();
        block(&self.inner.display, async move {
            let mut tx = pool.begin().await?;
            query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                .execute(&mut *tx)
                .await?;
            let doc = query("SELECT document FROM terrace_states WHERE name = $1")
                .bind(&name)
                .fetch_optional(&mut *tx)
                .await;
            let doc = match doc {
                Ok(d) => d,
                Err(e) if undefined_table(&e) => {
                    tx.rollback().await?;
                    return Ok(None);
                }
                Err(e) => return Err(e),
            };
            // Ended explicitly: a transaction left open when the process exits makes
            // PgBouncer close its server connection.
            let Some(doc) = doc else {
                tx.commit().await?;
                return Ok(None);
            };
            let rows = query(
                "SELECT base_serial, record FROM terrace_state_journal WHERE name = $1 \
                 ORDER BY seq",
            )
            .bind(&name)
            .fetch_all(&mut *tx)
            .await;
            let rows = match rows {
                Ok(r) => r,
                Err(e) if undefined_table(&e) => Vec::new(),
                Err(e) => return Err(e),
            };
            tx.commit().await?;
            Ok(Some((
                doc.get::<String, _>(0),
                rows.iter()
                    .map(|r| (r.get::<i64, _>(0), r.get::<String, _>(1)))
                    .collect(),
            )))
        })
    }

    /// Reads the state with its journal applied, or `None` if it was never written. A
    /// state in clear while a key is configured is refused, as in the local backend.
    pub fn load(&self) -> Result<Option<State>, StateError> {
        Ok(self.load_counting(false)?.map(|(s, _)| s))
    }

    fn load_counting(&self, allow_plain: bool) -> Result<Option<(State, usize)>, StateError> {
        let Some((doc, rows)) = self.fetch()? else {
            return Ok(None);
        };
        let path = self.path();
        let decoded = decode(&path, doc.as_bytes(), &self.keys)?;
        if self.keys.is_configured() && !decoded.encrypted && !allow_plain {
            return Err(StateError::Plaintext { path });
        }
        let mut state = decoded.state;
        let applied = match rows.first() {
            None => 0,
            Some((base, _)) => {
                let mut bytes = journal::line(&Header {
                    journal: JOURNAL_VERSION,
                    lineage: state.lineage.clone(),
                    base_serial: u64::try_from(*base).unwrap_or(0),
                });
                for (_, record) in &rows {
                    bytes.extend_from_slice(record.as_bytes());
                    bytes.push(b'\n');
                }
                journal::replay(&path, &bytes, &mut state, &self.keys)?
            }
        };
        Ok(Some((state, applied)))
    }

    /// Creates the tables if they do not exist. Serialised by a transaction-scoped
    /// advisory lock, since concurrent `CREATE TABLE IF NOT EXISTS` can fail. When they
    /// all exist nothing is created: `CREATE TABLE IF NOT EXISTS` needs the `CREATE`
    /// privilege on the schema even then, which a role that only writes rows lacks.
    fn ensure_schema(&self) -> Result<(), StateError> {
        let pool = self.inner.pool.clone();
        block(&self.inner.display, async move {
            let mut tx = pool.begin().await?;
            let present: bool = query(
                "SELECT to_regclass('terrace_states') IS NOT NULL \
                 AND to_regclass('terrace_state_history') IS NOT NULL \
                 AND to_regclass('terrace_state_journal') IS NOT NULL \
                 AND to_regclass('terrace_state_locks') IS NOT NULL",
            )
            .fetch_one(&mut *tx)
            .await?
            .get(0);
            if present {
                return tx.commit().await;
            }
            query("SELECT pg_advisory_xact_lock(hashtext('terrace_state_schema'))")
                .execute(&mut *tx)
                .await?;
            sqlx::raw_sql(
                "CREATE TABLE IF NOT EXISTS terrace_states (name text PRIMARY KEY, \
                   lineage text NOT NULL, serial bigint NOT NULL, document text NOT NULL, \
                   updated_at timestamptz NOT NULL DEFAULT now());
                 CREATE TABLE IF NOT EXISTS terrace_state_history (name text NOT NULL, \
                   serial bigint NOT NULL, document text NOT NULL, \
                   saved_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (name, serial));
                 CREATE TABLE IF NOT EXISTS terrace_state_journal (name text NOT NULL, \
                   base_serial bigint NOT NULL, seq bigint NOT NULL, record text NOT NULL, \
                   PRIMARY KEY (name, seq));
                 CREATE TABLE IF NOT EXISTS terrace_state_locks (name text PRIMARY KEY, \
                   lock_id text NOT NULL, who text NOT NULL, pid bigint NOT NULL, \
                   operation text NOT NULL, since timestamptz NOT NULL, \
                   expires_at timestamptz NOT NULL);",
            )
            .execute(&mut *tx)
            .await?;
            tx.commit().await
        })
    }

    /// Takes the state's lease for `operation`, or fails with [`StateError::LeaseHeld`]
    /// naming the holder and when its lease expires. The lease is renewed in the
    /// background until the returned lock is dropped (or the process dies).
    pub fn lock(&self, operation: &str) -> Result<PgLock, StateError> {
        self.ensure_schema()?;
        let info = LockInfo::current(operation);
        let (pool, name, i, secs) = (
            self.inner.pool.clone(),
            self.inner.name.clone(),
            info.clone(),
            self.inner.lease.as_secs_f64(),
        );
        let got = block(&self.inner.display, async move {
            let mut tx = pool.begin().await?;
            let got = query(
                "INSERT INTO terrace_state_locks AS l \
                   (name, lock_id, who, pid, operation, since, expires_at) \
                 VALUES ($1, $2, $3, $4, $5, to_timestamp($6), now() + make_interval(secs => $7)) \
                 ON CONFLICT (name) DO UPDATE SET lock_id = EXCLUDED.lock_id, \
                   who = EXCLUDED.who, pid = EXCLUDED.pid, operation = EXCLUDED.operation, \
                   since = EXCLUDED.since, expires_at = EXCLUDED.expires_at \
                 WHERE l.expires_at < now() \
                 RETURNING lock_id",
            )
            .bind(&name)
            .bind(&i.id)
            .bind(&i.who)
            .bind(i64::from(i.pid))
            .bind(&i.operation)
            .bind(i.since.timestamp_micros() as f64 / 1e6)
            .bind(secs)
            .fetch_optional(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(got)
        })?;
        if got.is_none() {
            let holder = self.holder()?;
            return Err(StateError::LeaseHeld {
                location: self.inner.display.clone(),
                info: holder.as_ref().map(|(i, _)| i.clone()),
                expires: holder.map(|(_, e)| e),
            });
        }
        let lost = Arc::new(AtomicBool::new(false));
        let renew = {
            let (pool, name, id, lease, lost) = (
                self.inner.pool.clone(),
                self.inner.name.clone(),
                info.id.clone(),
                self.inner.lease,
                lost.clone(),
            );
            runtime().spawn(async move {
                loop {
                    tokio::time::sleep(lease / 3).await;
                    let renewed = tokio::time::timeout(QUERY_TIMEOUT, async {
                        let mut tx = pool.begin().await?;
                        let r = query(
                            "UPDATE terrace_state_locks SET expires_at = now() + \
                             make_interval(secs => $3) WHERE name = $1 AND lock_id = $2",
                        )
                        .bind(&name)
                        .bind(&id)
                        .bind(lease.as_secs_f64())
                        .execute(&mut *tx)
                        .await?;
                        tx.commit().await?;
                        Ok::<_, sqlx::Error>(r)
                    })
                    .await;
                    // A failed renewal is retried at the next tick; only a lease that is
                    // gone (broken by force-unlock, or taken after expiring) is lost.
                    if let Ok(Ok(r)) = renewed {
                        if r.rows_affected() == 0 {
                            lost.store(true, Ordering::SeqCst);
                            return;
                        }
                    }
                }
            })
        };
        Ok(PgLock {
            backend: self.clone(),
            info,
            renew,
            lost,
            journal_seq: None,
        })
    }

    /// The current lease holder and when its lease expires, if the lease is live.
    fn holder(&self) -> Result<Option<(LockInfo, DateTime<Utc>)>, StateError> {
        let (pool, name) = (self.inner.pool.clone(), self.inner.name.clone());
        let row = block(&self.inner.display, async move {
            let mut tx = pool.begin().await?;
            let r = query(
                "SELECT lock_id, who, pid, operation, \
                 extract(epoch FROM since)::float8 AS since, \
                 extract(epoch FROM expires_at)::float8 AS expires_at \
                 FROM terrace_state_locks WHERE name = $1 AND expires_at > now()",
            )
            .bind(&name)
            .fetch_optional(&mut *tx)
            .await;
            end_read(tx, r, None).await
        })?;
        Ok(row.map(|r| (lock_info(&r), epoch(r.get("expires_at")))))
    }

    /// Who holds the state's lease now (see [`crate::LocalBackend::lock_holder`]).
    pub fn lock_holder(&self) -> Result<Option<Option<LockInfo>>, StateError> {
        Ok(self.holder()?.map(|(i, _)| Some(i)))
    }

    /// Removes the lease whose lock ID is `id`, naming its holder. Refuses another ID, and
    /// a holder that is a process still running on this machine. An expired lease is
    /// reported as free (and removed).
    pub fn force_unlock(&self, id: &str) -> Result<ForceUnlocked, StateError> {
        let (pool, name) = (self.inner.pool.clone(), self.inner.name.clone());
        let row = block(&self.inner.display, async move {
            let mut tx = pool.begin().await?;
            let r = query(
                "SELECT lock_id, who, pid, operation, \
                 extract(epoch FROM since)::float8 AS since, \
                 expires_at > now() AS live FROM terrace_state_locks WHERE name = $1",
            )
            .bind(&name)
            .fetch_optional(&mut *tx)
            .await;
            end_read(tx, r, None).await
        })?;
        let Some(row) = row else {
            return Ok(ForceUnlocked::WasFree(None));
        };
        let holder = lock_info(&row);
        let live: bool = row.get("live");
        if live && holder.id != id {
            return Err(StateError::ForceUnlock {
                message: format!(
                    "the state {} is locked by {} (pid {}, {}) with lock ID {}, not {id}; \
                     nothing was removed",
                    self.inner.display, holder.who, holder.pid, holder.operation, holder.id
                ),
            });
        }
        if live && holder.running_here() {
            return Err(StateError::ForceUnlock {
                message: format!(
                    "the lock is held by pid {} ({}), which is still running on this \
                     machine; removing its lease would let two commands write the state at \
                     once. Wait for it or stop it: its lease expires when it dies",
                    holder.pid, holder.operation
                ),
            });
        }
        let (pool, name, lock_id) = (
            self.inner.pool.clone(),
            self.inner.name.clone(),
            holder.id.clone(),
        );
        block(&self.inner.display, async move {
            let mut tx = pool.begin().await?;
            query("DELETE FROM terrace_state_locks WHERE name = $1 AND lock_id = $2")
                .bind(&name)
                .bind(&lock_id)
                .execute(&mut *tx)
                .await?;
            tx.commit().await
        })?;
        Ok(if live {
            ForceUnlocked::Removed(holder)
        } else {
            ForceUnlocked::WasFree(Some(holder))
        })
    }

    /// The versions kept in the history, newest first.
    pub fn history(&self) -> Result<Vec<HistoryEntry>, StateError> {
        let (pool, name) = (self.inner.pool.clone(), self.inner.name.clone());
        let rows = block(&self.inner.display, async move {
            let mut tx = pool.begin().await?;
            let r = query(
                "SELECT serial, extract(epoch FROM saved_at)::float8, \
                 coalesce(jsonb_array_length(document::jsonb -> 'resources'), 0)::bigint \
                 FROM terrace_state_history WHERE name = $1 ORDER BY serial DESC",
            )
            .bind(&name)
            .fetch_all(&mut *tx)
            .await;
            end_read(tx, r, Vec::new()).await
        })?;
        Ok(rows
            .iter()
            .map(|r| HistoryEntry {
                serial: u64::try_from(r.get::<i64, _>(0)).unwrap_or(0),
                saved_at: epoch(r.get(1)),
                resources: u64::try_from(r.get::<i64, _>(2)).unwrap_or(0),
            })
            .collect())
    }
}

fn lock_info(r: &sqlx::postgres::PgRow) -> LockInfo {
    LockInfo {
        who: r.get("who"),
        pid: u32::try_from(r.get::<i64, _>("pid")).unwrap_or(0),
        operation: r.get("operation"),
        since: epoch(r.get("since")),
        id: r.get("lock_id"),
    }
}

/// A time from seconds since the epoch (read as `float8`, so that no date feature of
/// the driver is needed).
fn epoch(seconds: f64) -> DateTime<Utc> {
    DateTime::from_timestamp_micros((seconds * 1e6) as i64).unwrap_or_default()
}

/// State names: what a person would type, nothing that needs quoting anywhere.
fn check_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 100
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "state name {name:?}: use 1 to 100 letters, digits, '_', '-' or '.' \
             (?state=NAME)"
        ))
    }
}

/// The held lease of a PostgreSQL state. Dropping it stops the renewal and releases the
/// lease.
pub struct PgLock {
    backend: PgBackend,
    info: LockInfo,
    renew: tokio::task::JoinHandle<()>,
    lost: Arc<AtomicBool>,
    /// The next journal sequence number, once this lock started the journal.
    journal_seq: Option<i64>,
}

impl std::fmt::Debug for PgLock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgLock")
            .field("state", &self.backend.inner.display)
            .field("info", &self.info)
            .finish()
    }
}

impl Drop for PgLock {
    fn drop(&mut self) {
        self.renew.abort();
        let (pool, name, id) = (
            self.backend.inner.pool.clone(),
            self.backend.inner.name.clone(),
            self.info.id.clone(),
        );
        // Best effort: if this fails the lease simply expires.
        let _ = block(&self.backend.inner.display, async move {
            let mut tx = pool.begin().await?;
            query("DELETE FROM terrace_state_locks WHERE name = $1 AND lock_id = $2")
                .bind(&name)
                .bind(&id)
                .execute(&mut *tx)
                .await?;
            tx.commit().await
        });
    }
}

/// Fails unless the lease `id` on `name` is still live, locking its row until the
/// transaction ends (so a force-unlock waits for a write in progress).
async fn fence(tx: &mut sqlx::PgConnection, name: &str, id: &str) -> Result<bool, sqlx::Error> {
    Ok(query(
        "SELECT 1 FROM terrace_state_locks WHERE name = $1 AND lock_id = $2 \
         AND expires_at > now() FOR UPDATE",
    )
    .bind(name)
    .bind(id)
    .fetch_optional(tx)
    .await?
    .is_some())
}

/// What a write transaction found.
enum WriteOutcome {
    Done,
    LeaseLost,
    Lineage(String),
    Stale(u64),
}

impl PgLock {
    /// Who holds this lock (this process).
    pub fn info(&self) -> &LockInfo {
        &self.info
    }

    fn lease_lost(&self) -> StateError {
        StateError::LeaseLost {
            location: self.backend.inner.display.clone(),
        }
    }

    /// Reads the state under the lease; a journal with records is folded in at once.
    pub fn load(&mut self) -> Result<Option<State>, StateError> {
        match self.backend.load_counting(false)? {
            Some((mut state, applied)) => {
                if applied > 0 {
                    self.write(&mut state)?;
                }
                Ok(Some(state))
            }
            None => Ok(None),
        }
    }

    /// Writes `state` as a new version (serial + 1) in one transaction that checks the
    /// lease, the lineage and the serial, moves the replaced version into the history
    /// (pruned to the last N), and empties the journal. On error `state.serial` is
    /// unchanged and nothing was written.
    pub fn write(&mut self, state: &mut State) -> Result<(), StateError> {
        if self.lost.load(Ordering::SeqCst) {
            return Err(self.lease_lost());
        }
        let previous = state.serial;
        state.serial = previous + 1;
        let bytes = match encode(state, &self.backend.keys) {
            Ok(b) => b,
            Err(e) => {
                state.serial = previous;
                return Err(e);
            }
        };
        let document = String::from_utf8(bytes).expect("JSON is UTF-8");
        let (pool, name, id, lineage, keep) = (
            self.backend.inner.pool.clone(),
            self.backend.inner.name.clone(),
            self.info.id.clone(),
            state.lineage.clone(),
            self.backend.inner.history,
        );
        let serial = i64::try_from(state.serial).unwrap_or(i64::MAX);
        let path = self.backend.path();
        let outcome = block(&self.backend.inner.display, async move {
            let mut tx = pool.begin().await?;
            if !fence(&mut tx, &name, &id).await? {
                return Ok(WriteOutcome::LeaseLost);
            }
            let current = query(
                "SELECT lineage, serial, document FROM terrace_states WHERE name = $1 \
                 FOR UPDATE",
            )
            .bind(&name)
            .fetch_optional(&mut *tx)
            .await?;
            if let Some(row) = &current {
                let (old_lineage, old_serial): (String, i64) = (row.get(0), row.get(1));
                if old_lineage != lineage {
                    return Ok(WriteOutcome::Lineage(old_lineage));
                }
                if old_serial >= serial {
                    return Ok(WriteOutcome::Stale(u64::try_from(old_serial).unwrap_or(0)));
                }
                query(
                    "INSERT INTO terrace_state_history (name, serial, document) \
                     VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
                )
                .bind(&name)
                .bind(old_serial)
                .bind(row.get::<String, _>(2))
                .execute(&mut *tx)
                .await?;
                query(
                    "UPDATE terrace_states SET serial = $2, document = $3, \
                     updated_at = now() WHERE name = $1",
                )
                .bind(&name)
                .bind(serial)
                .bind(&document)
                .execute(&mut *tx)
                .await?;
            } else {
                query(
                    "INSERT INTO terrace_states (name, lineage, serial, document) \
                     VALUES ($1, $2, $3, $4)",
                )
                .bind(&name)
                .bind(&lineage)
                .bind(serial)
                .bind(&document)
                .execute(&mut *tx)
                .await?;
            }
            query("DELETE FROM terrace_state_journal WHERE name = $1")
                .bind(&name)
                .execute(&mut *tx)
                .await?;
            query(
                "DELETE FROM terrace_state_history WHERE name = $1 AND serial NOT IN \
                 (SELECT serial FROM terrace_state_history WHERE name = $1 \
                  ORDER BY serial DESC LIMIT $2)",
            )
            .bind(&name)
            .bind(keep)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(WriteOutcome::Done)
        });
        let err = match outcome {
            Ok(WriteOutcome::Done) => {
                self.journal_seq = None;
                return Ok(());
            }
            Ok(WriteOutcome::LeaseLost) => self.lease_lost(),
            Ok(WriteOutcome::Lineage(found)) => StateError::LineageMismatch {
                path,
                expected: state.lineage.clone(),
                found,
            },
            Ok(WriteOutcome::Stale(found)) => StateError::StaleSerial {
                path,
                found,
                ours: previous,
            },
            Err(e) => e,
        };
        state.serial = previous;
        Err(err)
    }

    /// Records one step in the journal table and applies it to `state` (see
    /// [`crate::StateLock::append`]).
    pub fn append(&mut self, state: &mut State, record: &JournalRecord) -> Result<(), StateError> {
        self.append_all(state, std::slice::from_ref(record))
    }

    /// Records several steps in one transaction.
    pub fn append_all(
        &mut self,
        state: &mut State,
        records: &[JournalRecord],
    ) -> Result<(), StateError> {
        if records.is_empty() {
            return Ok(());
        }
        if self.journal_seq.is_none() {
            self.write(state)?;
            self.journal_seq = Some(1);
        }
        let mut lines = Vec::new();
        for record in records {
            record.apply_to(state);
            let mut line = journal::record_line(record, &self.backend.keys, &state.lineage);
            line.pop(); // the newline: one row per record
            lines.push(String::from_utf8(line).expect("JSON is UTF-8"));
        }
        let first = self.journal_seq.expect("started above");
        let (pool, name, id, base) = (
            self.backend.inner.pool.clone(),
            self.backend.inner.name.clone(),
            self.info.id.clone(),
            i64::try_from(state.serial).unwrap_or(i64::MAX),
        );
        let n = i64::try_from(lines.len()).unwrap_or(i64::MAX);
        let ok = block(&self.backend.inner.display, async move {
            let mut tx = pool.begin().await?;
            if !fence(&mut tx, &name, &id).await? {
                return Ok(false);
            }
            for (i, line) in lines.iter().enumerate() {
                query(
                    "INSERT INTO terrace_state_journal (name, base_serial, seq, record) \
                     VALUES ($1, $2, $3, $4)",
                )
                .bind(&name)
                .bind(base)
                .bind(first + i64::try_from(i).unwrap_or(0))
                .bind(line)
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
            Ok(true)
        })?;
        if !ok {
            return Err(self.lease_lost());
        }
        self.journal_seq = Some(first + n);
        Ok(())
    }

    /// Rewrites the state with its secrets sealed by `to` (see
    /// [`crate::StateLock::convert`]); the history keeps older versions as they were.
    ///
    /// The history rows are rewritten the same way, in one transaction, so that no
    /// version in the old form (secrets in clear, or under a retired key) stays behind.
    pub fn convert(&mut self, to: Keyring) -> Result<Option<State>, StateError> {
        let Some((mut state, _)) = self.backend.load_counting(true)? else {
            return Ok(None);
        };
        let old_keys = std::mem::replace(&mut self.backend.keys, to.clone());
        // The write moves the current version into the history: rewrite after it.
        self.write(&mut state)?;
        let (pool, name) = (
            self.backend.inner.pool.clone(),
            self.backend.inner.name.clone(),
        );
        let rows = block(&self.backend.inner.display, async move {
            let mut tx = pool.begin().await?;
            let r = query("SELECT serial, document FROM terrace_state_history WHERE name = $1")
                .bind(&name)
                .fetch_all(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(r.iter()
                .map(|r| (r.get::<i64, _>(0), r.get::<String, _>(1)))
                .collect::<Vec<_>>())
        })?;
        let path = self.backend.path();
        let mut rewritten = Vec::new();
        for (serial, doc) in rows {
            let mut old = decode(&path, doc.as_bytes(), &old_keys)?.state;
            let bytes = encode(&mut old, &to)?;
            rewritten.push((serial, String::from_utf8(bytes).expect("JSON is UTF-8")));
        }
        let (pool, name, id) = (
            self.backend.inner.pool.clone(),
            self.backend.inner.name.clone(),
            self.info.id.clone(),
        );
        let ok = block(&self.backend.inner.display, async move {
            let mut tx = pool.begin().await?;
            if !fence(&mut tx, &name, &id).await? {
                return Ok(false);
            }
            for (serial, doc) in &rewritten {
                query(
                    "UPDATE terrace_state_history SET document = $3 \
                     WHERE name = $1 AND serial = $2",
                )
                .bind(&name)
                .bind(serial)
                .bind(doc)
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
            Ok(true)
        })?;
        if !ok {
            return Err(self.lease_lost());
        }
        Ok(Some(state))
    }

    /// Writes the version `serial` from the history back as a new version of the state
    /// (the current one goes into the history, so a restore can be undone the same way).
    pub fn restore(&mut self, serial: u64) -> Result<State, StateError> {
        let current = self.load()?;
        let (pool, name) = (
            self.backend.inner.pool.clone(),
            self.backend.inner.name.clone(),
        );
        let s = i64::try_from(serial).unwrap_or(i64::MAX);
        let doc = block(&self.backend.inner.display, async move {
            let mut tx = pool.begin().await?;
            let r =
                query("SELECT document FROM terrace_state_history WHERE name = $1 AND serial = $2")
                    .bind(&name)
                    .bind(s)
                    .fetch_optional(&mut *tx)
                    .await;
            end_read(tx, r, None)
                .await
                .map(|r| r.map(|r| r.get::<String, _>(0)))
        })?;
        let Some(doc) = doc else {
            return Err(StateError::Backend {
                location: self.backend.inner.display.clone(),
                message: format!(
                    "the history holds no version with serial {serial} (`terrace state \
                     history` lists them); nothing was changed"
                ),
            });
        };
        let path = self.backend.path();
        // Lineage and serial come from the stored text even if its secrets cannot be
        // opened, so that the error below says which it is.
        peek(&path, doc.as_bytes())?;
        let mut old = decode(&path, doc.as_bytes(), &self.backend.keys)?.state;
        if let Some(current) = current {
            old.serial = current.serial;
        }
        self.write(&mut old)?;
        Ok(old)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_name_the_state_and_never_show_the_password() {
        let b = PgBackend::from_url(
            "pg://alice:s3cret@db.example:6432/infra?state=team-a.prod&lease=5&sslmode=disable",
            "dir",
        )
        .unwrap();
        assert_eq!(b.name(), "team-a.prod");
        assert_eq!(b.inner.lease, Duration::from_secs(5));
        assert_eq!(
            b.location(),
            "pg://alice@db.example:6432/infra?state=team-a.prod"
        );
        assert!(!format!("{b:?}").contains("s3cret"));
        let d = PgBackend::from_url("postgres://bob@h/db", "myproject").unwrap();
        assert_eq!(d.name(), "myproject");
        for bad in [
            "pg://h/db?state=a'b",
            "pg://h/db?state=",
            "pg://h/db?lease=0",
            "pg://h/db?history=x",
            "mysql://h/db",
        ] {
            let err = PgBackend::from_url(bad, "d").unwrap_err().to_string();
            assert!(!err.is_empty(), "{bad}");
        }
    }
}
