//! # crm-sqlite
//!
//! Storage for [`crm_core`] on SQLite: the embedded default. One file, no server.
//!
//! ```no_run
//! # async fn demo() -> crm_core::Result<()> {
//! use std::sync::Arc;
//! use crm_core::{Crm, Customer, TenantId};
//! use crm_sqlite::SqliteStore;
//!
//! let store = SqliteStore::builder("crm.db").cache_size_mib(64).open()?;
//! let crm = Crm::new(Arc::new(store));
//! let ann = crm.tenant(TenantId::new()).customers().register(Customer::person("Ann").build()?).await?;
//! # Ok(()) }
//! ```
//!
//! - The schema is embedded and migrated on open (and by [`SqliteStore::migrate`]); its
//!   version is kept in SQLite's `user_version`.
//! - WAL journal, `synchronous = NORMAL`, a busy timeout, and a page cache you can size.
//! - One writer connection (SQLite allows one writer at a time) and a small pool of reader
//!   connections; every call runs on tokio's blocking pool, never on the async executor.
//! - Every batch of interactions is one transaction with its profile deltas applied in it;
//!   every table's key starts with `tenant_id`.
//! - The outbox (notifications and domain events) is a table written in the transaction of
//!   the change that caused each message; a claim selects and leases due rows in one
//!   immediate transaction, so two dispatchers never take the same row.
//! - Unique violations map to [`Error::Duplicate`], stale versions to [`Error::Conflict`],
//!   a database still locked by another connection when the busy timeout runs out to
//!   [`Error::Contention`], everything else to [`Error::Storage`] with the driver error as
//!   its source.
//!
//! ## Why these dependencies
//!
//! - `rusqlite` with bundled SQLite: the maintained SQLite binding; bundling pins one SQLite
//!   version on every platform, so no system library is needed.
//! - `rusqlite_migration`: small, keeps the schema version in `user_version`, no extra table.
//! - `serde_json`: stores the customer record and the profile's maps as JSON text.
//! - `tokio` (rt only): `spawn_blocking`, to keep SQLite's blocking calls off the executor.
//! - `uuid`: the record ids of due entries (the crate `crm-core`'s ids wrap).

#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod access;
mod accounts;
mod audit;
mod cases;
mod codec;
mod customers;
mod dialect;
mod interactions;
mod kpi_rules;
mod merge;
mod outbox;
mod privacy;
mod sales;
mod schedule;
mod segment;
mod tasks;
mod value;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

use crm_core::{Error, Result};
use rusqlite::Connection;
use rusqlite_migration::{Migrations, M};

pub(crate) const BACKEND: &str = "sqlite";

/// The schema version this release migrates databases to (SQLite's `user_version`).
pub const SCHEMA_VERSION: u32 = MIGRATIONS.len() as u32;

/// The name of each embedded migration, in the order they apply: the migration that takes a
/// database to version `n` is `MIGRATION_NAMES[n - 1]`.
pub const MIGRATION_NAMES: [&str; 18] = [
    "initial",
    "value",
    "segments",
    "value_classes",
    "outbox",
    "cases",
    "tasks",
    "kpi_rules",
    "interactions_by_time",
    "redirects",
    "archive",
    "audit",
    "access",
    "access_log",
    "sales",
    "accounts",
    "schedule",
    "job_leases",
];

// Every migration has its name.
const _: () = assert!(MIGRATION_NAMES.len() as u32 == SCHEMA_VERSION);

static MIGRATIONS: &[M<'static>] = &[
    M::up(include_str!("sql/001_initial.sql")),
    M::up(include_str!("sql/002_value.sql")),
    M::up(include_str!("sql/003_segments.sql")),
    M::up(include_str!("sql/004_value_classes.sql")),
    M::up(include_str!("sql/005_outbox.sql")),
    M::up(include_str!("sql/006_cases.sql")),
    M::up(include_str!("sql/007_tasks.sql")),
    M::up(include_str!("sql/008_kpi_rules.sql")),
    M::up(include_str!("sql/009_interactions_by_time.sql")),
    M::up(include_str!("sql/010_redirects.sql")),
    M::up(include_str!("sql/011_archive.sql")),
    M::up(include_str!("sql/012_audit.sql")),
    M::up(include_str!("sql/013_access.sql")),
    M::up(include_str!("sql/014_access_log.sql")),
    M::up(include_str!("sql/015_sales.sql")),
    M::up(include_str!("sql/016_accounts.sql")),
    M::up(include_str!("sql/017_schedule.sql")),
    M::up(include_str!("sql/018_job_leases.sql")),
];

/// Options for opening a [`SqliteStore`].
#[derive(Clone, Debug)]
#[must_use = "call open() to open the store"]
pub struct SqliteOptions {
    path: Option<PathBuf>,
    busy_timeout: Duration,
    cache_size_mib: u32,
    max_readers: usize,
    migrate: bool,
}

impl SqliteOptions {
    /// How long a connection waits for a lock held by another process before failing
    /// (default 5 s).
    pub fn busy_timeout(mut self, timeout: Duration) -> Self {
        self.busy_timeout = timeout;
        self
    }

    /// Page cache per connection, in MiB (default 64; SQLite's own default is 2).
    pub fn cache_size_mib(mut self, mib: u32) -> Self {
        self.cache_size_mib = mib.max(1);
        self
    }

    /// Most reader connections open at once (default 4): a read waits for a free one
    /// rather than opening more. An in-memory store always uses its one connection.
    pub fn max_readers(mut self, n: usize) -> Self {
        self.max_readers = n;
        self
    }

    /// Whether [`open`](Self::open) migrates the database to the latest schema (default:
    /// yes). Without it, the store works only on a database already at
    /// [`SCHEMA_VERSION`]; use it to look at [`SqliteStore::schema_version`] before
    /// calling [`SqliteStore::migrate`].
    pub fn migrate_on_open(mut self, yes: bool) -> Self {
        self.migrate = yes;
        self
    }

    /// Opens (creating if needed) the database and migrates it to the latest schema
    /// (unless [`migrate_on_open`](Self::migrate_on_open) said no).
    pub fn open(self) -> Result<SqliteStore> {
        let mut writer = match &self.path {
            Some(p) => Connection::open(p),
            None => Connection::open_in_memory(),
        }
        .map_err(storage)?;
        configure(&writer, &self)?;
        if self.migrate {
            migrate(&mut writer)?;
        }
        Ok(SqliteStore {
            inner: Arc::new(Inner {
                writer: Mutex::new(writer),
                readers: Mutex::new(Readers::default()),
                free: Condvar::new(),
                options: self,
            }),
        })
    }

    /// Applies the connection settings every connection of this store gets.
    pub fn configure(&self, conn: &Connection) -> Result<()> {
        configure(conn, self)
    }
}

fn configure(conn: &Connection, options: &SqliteOptions) -> Result<()> {
    conn.busy_timeout(options.busy_timeout).map_err(storage)?;
    conn.pragma_update(None, "journal_mode", "WAL")
        .map_err(storage)?;
    conn.pragma_update(None, "synchronous", "NORMAL")
        .map_err(storage)?;
    let kib = -(i64::from(options.cache_size_mib) * 1024);
    conn.pragma_update(None, "cache_size", kib)
        .map_err(storage)?;
    conn.pragma_update(None, "temp_store", "MEMORY")
        .map_err(storage)?;
    Ok(())
}

fn migrate(conn: &mut Connection) -> Result<()> {
    Migrations::from_slice(MIGRATIONS)
        .to_latest(conn)
        .map_err(|e| Error::storage(BACKEND, e))
}

/// A driver error as the core's kind: the database still busy or locked by another
/// connection after the busy timeout is [`Error::Contention`], anything else
/// [`Error::Storage`].
pub(crate) fn storage(e: rusqlite::Error) -> Error {
    match e.sqlite_error_code() {
        Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked) => {
            Error::Contention {
                backend: BACKEND,
                source: Box::new(e),
            }
        }
        _ => Error::storage(BACKEND, e),
    }
}

struct Inner {
    writer: Mutex<Connection>,
    readers: Mutex<Readers>,
    /// Signalled when a reader connection is handed back.
    free: Condvar,
    options: SqliteOptions,
}

/// The reader connections of a database file: those not in use, and how many are open.
#[derive(Default)]
struct Readers {
    idle: Vec<Connection>,
    open: usize,
    /// Connections opened over the store's life.
    opened: usize,
}

/// A reader connection lent to one read; handed back when dropped (closed instead if the
/// read panicked, as it may have left the connection mid-transaction).
struct Lent<'a> {
    inner: &'a Inner,
    conn: Option<Connection>,
}

impl Drop for Lent<'_> {
    fn drop(&mut self) {
        let conn = self.conn.take().filter(|_| !std::thread::panicking());
        let mut readers = lock(&self.inner.readers);
        match conn {
            Some(c) => readers.idle.push(c),
            None => readers.open = readers.open.saturating_sub(1),
        }
        drop(readers);
        self.inner.free.notify_one();
    }
}

impl Inner {
    /// A reader connection of the file at `path`: an idle one, a new one while fewer than
    /// `max_readers` are open, or the next one handed back.
    fn lend(&self, path: &Path) -> Result<Lent<'_>> {
        let mut readers = lock(&self.readers);
        loop {
            if let Some(conn) = readers.idle.pop() {
                return Ok(Lent {
                    inner: self,
                    conn: Some(conn),
                });
            }
            if readers.open < self.options.max_readers.max(1) {
                readers.open += 1;
                readers.opened += 1;
                break;
            }
            readers = self.free.wait(readers).unwrap_or_else(|p| p.into_inner());
        }
        drop(readers);
        // Counted as open from here: a failure to open hands the place back on drop.
        let mut lent = Lent {
            inner: self,
            conn: None,
        };
        let conn = Connection::open(path).map_err(storage)?;
        configure(&conn, &self.options)?;
        lent.conn = Some(conn);
        Ok(lent)
    }
}

/// Every storage port of `crm-core` on one SQLite database. Cheap to clone.
#[derive(Clone)]
pub struct SqliteStore {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.inner.options.path)
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl crm_core::Backend for SqliteStore {
    fn name(&self) -> &'static str {
        BACKEND
    }

    /// Every capability.
    fn capabilities(&self) -> crm_core::Capabilities {
        crm_core::Capabilities::ALL
    }
}

impl SqliteStore {
    /// Options for a database file at `path` (created if missing).
    pub fn builder(path: impl AsRef<Path>) -> SqliteOptions {
        SqliteOptions {
            path: Some(path.as_ref().to_path_buf()),
            busy_timeout: Duration::from_secs(5),
            cache_size_mib: 64,
            max_readers: 4,
            migrate: true,
        }
    }

    /// Opens the database file at `path` with default options.
    pub fn open(path: impl AsRef<Path>) -> Result<SqliteStore> {
        Self::builder(path).open()
    }

    /// A private in-memory database (gone when the store is dropped).
    pub fn open_in_memory() -> Result<SqliteStore> {
        SqliteOptions {
            path: None,
            ..Self::builder("")
        }
        .open()
    }

    /// Migrates the schema to the latest version (also done on open).
    pub async fn migrate(&self) -> Result<()> {
        self.write(migrate).await
    }

    /// The schema version the database is at.
    pub async fn schema_version(&self) -> Result<u32> {
        self.read(|conn| {
            conn.pragma_query_value(None, "user_version", |r| r.get::<_, u32>(0))
                .map_err(storage)
        })
        .await
    }

    /// Runs `f` on the writer connection on the blocking pool.
    pub(crate) async fn write<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T> + Send + 'static,
    {
        let inner = self.inner.clone();
        run_blocking(move || f(&mut lock(&inner.writer))).await
    }

    /// Runs `f` on a reader connection (the writer, for an in-memory database).
    pub(crate) async fn read<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        let inner = self.inner.clone();
        run_blocking(move || {
            let Some(path) = &inner.options.path else {
                return f(&lock(&inner.writer));
            };
            let lent = inner.lend(path)?;
            match &lent.conn {
                Some(conn) => f(conn),
                None => Err(Error::storage(BACKEND, "no reader connection")),
            }
        })
        .await
    }
}

impl SqliteStore {
    /// Runs `f` once per distinct id of `ids` (at most [`crm_core::ports::MAX_IDS`]) on one
    /// reader connection in one read transaction, so the records come from one snapshot;
    /// the ids `f` found, with what it read.
    pub(crate) async fn read_each<I, T, F>(&self, ids: &[I], f: F) -> Result<Vec<(I, T)>>
    where
        I: Copy + Ord + Send + 'static,
        T: Send + 'static,
        F: Fn(&Connection, I) -> Result<Option<T>> + Send + 'static,
    {
        crm_core::ports::check_ids(ids.len())?;
        let ids: std::collections::BTreeSet<I> = ids.iter().copied().collect();
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        self.read(move |conn| {
            let tx = conn.unchecked_transaction().map_err(storage)?;
            let mut out = Vec::with_capacity(ids.len());
            for id in ids {
                if let Some(t) = f(&tx, id)? {
                    out.push((id, t));
                }
            }
            tx.commit().map_err(storage)?;
            Ok(out)
        })
        .await
    }
}

/// `Ok(None)` for [`Error::NotFound`]: a batch read leaves missing records out.
pub(crate) fn found<T>(read: Result<T>) -> Result<Option<T>> {
    match read {
        Ok(t) => Ok(Some(t)),
        Err(Error::NotFound { .. }) => Ok(None),
        Err(e) => Err(e),
    }
}

async fn run_blocking<T, F>(f: F) -> Result<T>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T> + Send + 'static,
{
    match tokio::task::spawn_blocking(f).await {
        Ok(r) => r,
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(e) => Err(Error::storage(BACKEND, e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crm_core::{CustomerId, CustomerStore, TenantId};

    /// Many reads at once share at most `max_readers` connections, waiting for one
    /// another: none is opened and closed again per read.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_reads_wait_for_a_reader_instead_of_opening_more() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let store = SqliteStore::builder(dir.path().join("crm.db"))
            .max_readers(2)
            .open()
            .expect("open");
        let tenant = TenantId::new();
        for _ in 0..2 {
            let reads: Vec<_> = (0..12)
                .map(|_| {
                    let store = store.clone();
                    tokio::spawn(async move {
                        // Long enough that the reads overlap.
                        store
                            .read(|_| {
                                std::thread::sleep(std::time::Duration::from_millis(20));
                                Ok(())
                            })
                            .await?;
                        store.get_customer(tenant, CustomerId::new()).await
                    })
                })
                .collect();
            for read in reads {
                let r = read.await.expect("joined");
                assert!(matches!(r, Err(Error::NotFound { .. })), "{r:?}");
            }
        }
        let readers = lock(&store.inner.readers);
        assert!(
            readers.opened <= 2 && readers.open == readers.opened,
            "each opened once, at most 2: opened {}, open {}",
            readers.opened,
            readers.open
        );
        assert_eq!(readers.idle.len(), readers.open, "all handed back");
    }

    /// A store opened without migrating leaves the file's schema as it is, so its version
    /// can be read before migrating.
    #[tokio::test]
    async fn opening_without_migrating_leaves_the_schema_alone() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let path = dir.path().join("crm.db");
        let store = SqliteStore::builder(&path)
            .migrate_on_open(false)
            .open()
            .expect("open");
        assert_eq!(store.schema_version().await.expect("version"), 0);
        store.migrate().await.expect("migrate");
        assert_eq!(
            store.schema_version().await.expect("version"),
            SCHEMA_VERSION
        );
        drop(store);
        let again = SqliteStore::builder(&path)
            .migrate_on_open(false)
            .open()
            .expect("open");
        assert_eq!(
            again.schema_version().await.expect("version"),
            SCHEMA_VERSION
        );
    }
}
