//! Moving a database to another server with its data: a dump of what is inside it
//! (`dump::Purpose::Move`), restored into the database the new server's provider has just
//! created, then verified by counting every table's rows on both sides.

use std::collections::BTreeMap;

use sqlx::mysql::MySqlConnectOptions;
use sqlx::postgres::PgConnectOptions;
use sqlx::{AssertSqlSafe, ConnectOptions, Connection, Row};
use terrace_provider::{Address, Attrs, DataCopy, ProviderError, ProviderResult};

use crate::quote::{mysql_ident, pg_ident};
use crate::{attrs, dump, within, SqlEngine, SqlProvider, CONNECT_TIMEOUT, STATEMENT_TIMEOUT};

impl SqlProvider {
    /// The format of this server's copies: dumps of one engine restore only into it.
    pub(crate) fn copy_format(&self) -> String {
        match self.server.engine {
            SqlEngine::Mysql => "mysql".into(),
            SqlEngine::Postgres => "postgres".into(),
        }
    }

    /// Dumps database `attrs.name` for its move and counts its rows.
    pub(crate) async fn export_database(
        &self,
        address: &Address,
        attrs: &Attrs,
    ) -> ProviderResult<DataCopy> {
        let name = attrs::req_str(attrs, "name")?;
        let dir = self
            .backup_dir
            .as_ref()
            .ok_or_else(|| ProviderError::Operation {
                address: address.clone(),
                message: "cannot move a database without a backup directory to copy it into".into(),
            })?;
        let path = dump::dump(
            &self.server,
            self.socket.as_deref(),
            address,
            name,
            dir,
            dump::Purpose::Move,
        )
        .await?;
        // Counted after the dump: the tenant's apps are stopped by then (their destroy
        // comes first), so both see the same rows.
        let inventory = self.row_counts(address, name).await?;
        Ok(DataCopy {
            format: self.copy_format(),
            path,
            inventory,
        })
    }

    /// Restores `copy` into database `attrs.name` and checks every table has the rows
    /// the copy counted.
    pub(crate) async fn restore_database(
        &self,
        address: &Address,
        attrs: &Attrs,
        copy: &DataCopy,
    ) -> ProviderResult<()> {
        let name = attrs::req_str(attrs, "name")?;
        if copy.format != self.copy_format() {
            return Err(ProviderError::Operation {
                address: address.clone(),
                message: format!(
                    "a {} dump cannot be restored into {} (a {} server)",
                    copy.format,
                    self.server.target(),
                    self.copy_format()
                ),
            });
        }
        dump::restore(
            &self.server,
            self.socket.as_deref(),
            address,
            name,
            &copy.path,
        )
        .await?;
        let found = self.row_counts(address, name).await?;
        if found != copy.inventory {
            return Err(ProviderError::Operation {
                address: address.clone(),
                message: format!(
                    "the restored database {name:?} does not hold what the copy held \
                     (rows per table: copied {:?}, restored {found:?}); the old database is kept",
                    copy.inventory
                ),
            });
        }
        Ok(())
    }

    /// Rows per table of database `db` (exact counts), on a connection of its own to
    /// that database.
    async fn row_counts(
        &self,
        address: &Address,
        db: &str,
    ) -> ProviderResult<BTreeMap<String, u64>> {
        let s = &self.server;
        let fail = |e: sqlx::Error| self.map_err(&e, address, &[]);
        let mut counts = BTreeMap::new();
        match s.engine {
            SqlEngine::Mysql => {
                let mut o = MySqlConnectOptions::new()
                    .host(&s.address)
                    .port(s.port)
                    .username(&s.admin_user)
                    .password(s.admin_password.expose())
                    .database(db);
                if let Some(path) = &self.socket {
                    o = o.socket(path);
                }
                let mut conn = within(
                    "connecting",
                    CONNECT_TIMEOUT,
                    o.disable_statement_logging().connect(),
                )
                .await
                .map_err(fail)?;
                let tables: Vec<String> = within(
                    "listing tables",
                    STATEMENT_TIMEOUT,
                    sqlx::query_scalar(
                        "SELECT CAST(table_name AS CHAR) FROM information_schema.tables \
                         WHERE table_schema = ? AND table_type = 'BASE TABLE'",
                    )
                    .bind(db)
                    .fetch_all(&mut conn),
                )
                .await
                .map_err(fail)?;
                for t in tables {
                    // Names come from the server: quoted, never interpolated raw.
                    let sql = format!("SELECT COUNT(*) FROM {}", mysql_ident(&t));
                    let row = within(
                        "counting rows",
                        STATEMENT_TIMEOUT,
                        sqlx::query(AssertSqlSafe(sql)).fetch_one(&mut conn),
                    )
                    .await
                    .map_err(fail)?;
                    counts.insert(t, row.try_get::<i64, _>(0).map_err(fail)? as u64);
                }
                let _ = conn.close().await;
            }
            SqlEngine::Postgres => {
                let mut o = PgConnectOptions::new()
                    .host(&s.address)
                    .port(s.port)
                    .username(&s.admin_user)
                    .password(s.admin_password.expose())
                    .database(db);
                if let Some(dir) = self.socket.as_deref().and_then(|p| p.parent()) {
                    o = o.socket(dir);
                }
                let mut conn = within(
                    "connecting",
                    CONNECT_TIMEOUT,
                    o.disable_statement_logging().connect(),
                )
                .await
                .map_err(fail)?;
                let tables: Vec<(String, String)> = within(
                    "listing tables",
                    STATEMENT_TIMEOUT,
                    sqlx::query_as(
                        "SELECT schemaname::text, tablename::text FROM pg_catalog.pg_tables \
                         WHERE schemaname NOT IN ('pg_catalog', 'information_schema')",
                    )
                    .fetch_all(&mut conn),
                )
                .await
                .map_err(fail)?;
                for (schema, t) in tables {
                    let sql = format!(
                        "SELECT COUNT(*) FROM {}.{}",
                        pg_ident(&schema),
                        pg_ident(&t)
                    );
                    let row = within(
                        "counting rows",
                        STATEMENT_TIMEOUT,
                        sqlx::query(AssertSqlSafe(sql)).fetch_one(&mut conn),
                    )
                    .await
                    .map_err(fail)?;
                    counts.insert(
                        format!("{schema}.{t}"),
                        row.try_get::<i64, _>(0).map_err(fail)? as u64,
                    );
                }
                let _ = conn.close().await;
            }
        }
        Ok(counts)
    }
}
