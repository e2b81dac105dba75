//! Opening the store a `--database` names, the tenant the tool works on, and the one error
//! type every command returns.

use std::path::Path;
use std::sync::Arc;

use crm::sqlite::{SqliteStore, MIGRATION_NAMES, SCHEMA_VERSION};
use crm::{Crm, Storage, TenantId, UserId};
use uuid::Uuid;

/// The tenant the tool works on unless `--tenant` names another: a fixed id, so that every
/// command on one database finds what `crm demo` or `crm import` stored.
pub const DEFAULT_TENANT: TenantId =
    TenantId::from_uuid(Uuid::from_u128(0x0000_0000_0000_4000_8000_0000_0000_0001));

/// Why a command failed: one line for a person on stderr, and the exit status.
#[derive(Debug)]
pub struct Failure {
    /// What went wrong, naming the input at fault.
    pub message: String,
    /// The reader of stdout went away (`crm ... | head`): stop without a word.
    pub closed_pipe: bool,
}

impl Failure {
    /// A failure with this message.
    pub fn new(message: impl Into<String>) -> Self {
        Failure {
            message: message.into(),
            closed_pipe: false,
        }
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl From<crm::Error> for Failure {
    fn from(e: crm::Error) -> Self {
        Failure::new(e.to_string())
    }
}

impl From<serde_json::Error> for Failure {
    fn from(e: serde_json::Error) -> Self {
        Failure {
            closed_pipe: e.io_error_kind() == Some(std::io::ErrorKind::BrokenPipe),
            ..Failure::new(e.to_string())
        }
    }
}

impl From<std::io::Error> for Failure {
    fn from(e: std::io::Error) -> Self {
        Failure {
            closed_pipe: e.kind() == std::io::ErrorKind::BrokenPipe,
            ..Failure::new(e.to_string())
        }
    }
}

/// Runs file work on the blocking pool, off the async executor.
pub async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, Failure> + Send + 'static,
) -> Result<T, Failure> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Failure::new(e.to_string()))?
}

/// What `--database` names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// A SQLite file.
    Sqlite(String),
    /// A PostgreSQL connection string.
    Postgres(String),
}

impl Target {
    /// `postgres://` and `postgresql://` URLs are PostgreSQL; anything else is a file path.
    pub fn parse(text: &str) -> Target {
        if text.starts_with("postgres://") || text.starts_with("postgresql://") {
            Target::Postgres(text.to_string())
        } else {
            Target::Sqlite(text.to_string())
        }
    }
}

/// An open store and the CRM over it.
pub struct Db {
    /// The CRM, on the system clock.
    pub crm: Crm,
    /// The tenant the command works on.
    pub tenant: TenantId,
}

impl Db {
    /// The tenant's system handle.
    pub fn t(&self) -> crm::TenantCrm {
        self.crm.tenant(self.tenant)
    }
}

/// How to open a store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Open {
    /// The store must exist and be at the current schema (SQLite files are migrated on
    /// open, as the library does).
    Existing,
    /// Create the file or schema if missing, and migrate.
    Create,
}

/// Opens the store `database` names, for `tenant`.
pub async fn open(database: &str, tenant: TenantId, how: Open) -> Result<Db, Failure> {
    let storage: Arc<dyn Storage> = match Target::parse(database) {
        Target::Sqlite(path) => {
            if how == Open::Existing && !Path::new(&path).exists() {
                return Err(Failure::new(format!(
                    "no database at {path}: create one with `crm init` (or try `crm demo`), or name another with --database"
                )));
            }
            Arc::new(open_sqlite(path, true).await?)
        }
        Target::Postgres(url) => open_postgres(&url, how == Open::Create).await?,
    };
    Ok(Db {
        crm: Crm::new(storage),
        tenant,
    })
}

/// Opens a SQLite file on the blocking pool (opening reads and may migrate).
async fn open_sqlite(path: String, migrate: bool) -> Result<SqliteStore, Failure> {
    tokio::task::spawn_blocking(move || {
        SqliteStore::builder(&path)
            .migrate_on_open(migrate)
            .open()
            .map_err(|e| Failure::new(format!("{path}: {e}")))
    })
    .await
    .map_err(|e| Failure::new(format!("opening the database: {e}")))?
}

#[cfg(feature = "postgres")]
async fn open_postgres(url: &str, migrate: bool) -> Result<Arc<dyn Storage>, Failure> {
    let store = crm::postgres::PostgresStore::builder(url)
        .migrate_on_connect(migrate)
        .connect()
        .await?;
    Ok(Arc::new(store))
}

#[cfg(not(feature = "postgres"))]
async fn open_postgres(_url: &str, _migrate: bool) -> Result<Arc<dyn Storage>, Failure> {
    Err(Failure::new(
        "--database: this build has no PostgreSQL support (build with the `postgres` feature)",
    ))
}

/// One migration and whether the database has it.
pub struct MigrationState {
    /// Its version (1 for the first).
    pub version: u32,
    /// Its name.
    pub name: String,
    /// Whether it was applied before this command ran.
    pub applied: bool,
}

/// The migrations of the store `database` names and which were applied, then (unless
/// `status_only`) applies the pending ones. Creates a SQLite file if missing.
pub async fn migrate(database: &str, status_only: bool) -> Result<Vec<MigrationState>, Failure> {
    let (names, version): (Vec<String>, u32) = match Target::parse(database) {
        Target::Sqlite(path) => {
            if status_only && !Path::new(&path).exists() {
                return Err(Failure::new(format!("no database at {path}")));
            }
            let store = open_sqlite(path, false).await?;
            let version = store.schema_version().await?;
            if version > SCHEMA_VERSION {
                return Err(Failure::new(format!(
                    "the database is at schema version {version}, newer than this tool's {SCHEMA_VERSION}: use a newer `crm`"
                )));
            }
            if !status_only {
                store.migrate().await?;
            }
            let names = MIGRATION_NAMES.iter().map(|n| n.to_string()).collect();
            (names, version)
        }
        Target::Postgres(url) => postgres_migrate(&url, status_only).await?,
    };
    Ok(names
        .into_iter()
        .zip(1u32..)
        .map(|(name, v)| MigrationState {
            version: v,
            name,
            applied: v <= version,
        })
        .collect())
}

#[cfg(feature = "postgres")]
async fn postgres_migrate(url: &str, status_only: bool) -> Result<(Vec<String>, u32), Failure> {
    use crm::postgres::PostgresStore;
    let store = PostgresStore::connect(url).await?;
    let version = store.schema_version().await?;
    if !status_only {
        store.migrate().await?;
    }
    Ok((PostgresStore::migration_names(), version))
}

#[cfg(not(feature = "postgres"))]
async fn postgres_migrate(_url: &str, _status_only: bool) -> Result<(Vec<String>, u32), Failure> {
    open_postgres("", false).await.map(|_| (Vec::new(), 0))
}

/// The staff of `crm demo`, with their names: the tool shows these users by name and any
/// other by the first 8 hex digits of its id.
pub const DEMO_STAFF: [(UserId, &str); 4] = [
    (
        UserId::from_uuid(Uuid::from_u128(0x0000_0000_0000_4000_8000_0000_0000_0101)),
        "Maria Lopez",
    ),
    (
        UserId::from_uuid(Uuid::from_u128(0x0000_0000_0000_4000_8000_0000_0000_0102)),
        "Jonas Berg",
    ),
    (
        UserId::from_uuid(Uuid::from_u128(0x0000_0000_0000_4000_8000_0000_0000_0103)),
        "Aiko Tanaka",
    ),
    (
        UserId::from_uuid(Uuid::from_u128(0x0000_0000_0000_4000_8000_0000_0000_0104)),
        "Sam Okafor",
    ),
];

/// A user as a person reads it.
pub fn user_label(user: UserId) -> String {
    DEMO_STAFF
        .iter()
        .find(|(u, _)| *u == user)
        .map(|(_, name)| (*name).to_string())
        .unwrap_or_else(|| user.to_string().chars().take(8).collect())
}

/// A user named on the command line: a demo staff member's name, or an id.
pub fn parse_user(text: &str, field: &str) -> Result<UserId, Failure> {
    if let Some((u, _)) = DEMO_STAFF
        .iter()
        .find(|(_, name)| name.eq_ignore_ascii_case(text))
    {
        return Ok(*u);
    }
    UserId::parse_field(text, field).map_err(Failure::from)
}
