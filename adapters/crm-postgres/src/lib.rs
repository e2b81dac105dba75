//! # crm-postgres
//!
//! Storage for [`crm_core`] on PostgreSQL (14 or newer), for hosts that outgrow one
//! embedded database. Same semantics as `crm-sqlite`: the conformance suite of
//! `crm-testkit` runs against a real server.
//!
//! ```no_run
//! # async fn demo() -> crm_core::Result<()> {
//! use std::sync::Arc;
//! use crm_core::Crm;
//! use crm_postgres::PostgresStore;
//!
//! let store = PostgresStore::builder("host=/run/postgresql user=crm dbname=crm")
//!     .max_connections(16)
//!     .connect()
//!     .await?;
//! store.migrate().await?;
//! let crm = Crm::new(Arc::new(store));
//! # Ok(()) }
//! ```
//!
//! ## Connection options
//!
//! [`PostgresStore::builder`] takes a libpq-style connection string or URL
//! (`host=... port=... user=... password=... dbname=...`, or `postgres://...`), parsed by
//! `tokio-postgres`; [`PostgresOptions::max_connections`] sizes the `deadpool-postgres` pool.
//!
//! TLS (rustls with the ring provider) is behind the feature `tls`: give the roots to trust
//! with `PostgresOptions::tls` (`PostgresTls`, for example your private CA's PEM) and put
//! `sslmode=require` in the connection string to refuse plain connections. The server's
//! certificate is always verified, host name included; a server that presents an
//! untrusted certificate is refused at `connect`. Without the feature, connections are plain:
//! use a unix socket or a private network.
//!
//! ## Migrations
//!
//! The schema is embedded (`src/sql/V*.sql`) and applied by [`PostgresStore::migrate`] with
//! `refinery`, which records applied versions in `refinery_schema_history`. The call holds a
//! PostgreSQL advisory lock for its whole run, so several processes may migrate at once:
//! the first applies, the others wait and then find nothing to do.
//!
//! ## Distributing by tenant (Citus)
//!
//! Every table's primary key and every index lead with `tenant_id`, and every statement
//! filters by it, so each tenant's rows live together. To spread tenants over a Citus
//! cluster, distribute every table by `tenant_id` and co-locate them:
//!
//! ```sql
//! SELECT create_distributed_table('customers', 'tenant_id');
//! SELECT create_distributed_table(t, 'tenant_id', colocate_with => 'customers')
//!   FROM unnest(ARRAY['customer_emails', 'customer_phones', 'customer_tags',
//!     'customer_external_ids', 'ownership_changes', 'interactions', 'profiles',
//!     'profile_deltas',
//!     'value_scores', 'value_models', 'value_classes', 'segments', 'segment_members',
//!     'outbox', 'cases', 'tasks', 'kpi_rules', 'customer_redirects',
//!     'archive_horizons', 'customer_audit']) t;
//! ```
//!
//! No table is a reference table: nothing is shared between tenants. Joins (customers with
//! profiles, scores and classes in segment rules) are on `(tenant_id, customer_id)` and stay
//! on one node.
//!
//! ## Profiles: appended deltas, folded later
//!
//! Logging a batch does not rewrite the profiles it touches. In the batch's transaction the
//! adapter checks that every customer exists, copies the new interactions in with binary
//! `COPY`, and copies one row per touched customer into `profile_deltas`: what the batch
//! adds to that profile (counts, first and last instants, revenue per currency, channel
//! counts, last contact per user). No profile row is locked, so batches about the same
//! customers do not wait for each other.
//!
//! A profile is its `profiles` row merged with its pending deltas; merging is associative
//! and commutative, so the result equals a rebuild from the full history whatever the order.
//! `get_profile` reads both in one statement. Folding
//! ([`PostgresStore::fold_profiles`]) merges pending deltas into `profiles` and deletes them
//! in one transaction per few thousand customers; every segment query (find, count,
//! refresh) folds the tenant first, because rules compile to SQL over `profiles`. A host that
//! logs much and queries little should schedule `fold_profiles` (for example after each
//! import, or every few minutes) so the pending rows stay few: each costs a little on every
//! `get_profile` of its customer until it is folded.
//!
//! The first try of a batch does not look up which idempotency keys are known (a batch is
//! usually all new): a known key makes the `COPY` fail on the unique index, and the batch is
//! then tried again with one index probe per key, storing only the new rows.
//!
//! ## The outbox
//!
//! Notifications and domain events wait in the `outbox` table, written in the transaction
//! of the change that caused them. Dispatchers claim due rows with
//! `FOR UPDATE SKIP LOCKED` under a lease, so several can run at once without taking the
//! same row; rows with an ordering key (an entity's events) are claimed one at a time in
//! `seq` order. `seq` comes from an identity column: it increases per tenant in insert
//! order, with gaps, and two concurrent transactions about different entities may commit
//! out of `seq` order (events of one entity cannot: their writes lock the entity first).
//!
//! ## Row-level security
//!
//! Every statement filters by tenant. As a second line of defence, PostgreSQL can refuse a
//! session every row of other tenants:
//!
//! 1. As the tables' owner, after migrating, call
//!    [`PostgresStore::enable_row_level_security`]: every table gets row-level security
//!    (forced, so the owner is bound too) and a policy `crm_tenant` that admits a row only
//!    when its `tenant_id` equals the session setting `crm.tenant_id` (the tenant id in hex).
//!    With the setting unset, a session sees and writes nothing.
//! 2. Serve tenants through a store connected with
//!    [`PostgresOptions::row_level_security`]`(true)`, as a role that is neither a superuser
//!    nor `BYPASSRLS` (those ignore policies), with `SELECT, INSERT, UPDATE, DELETE` on the
//!    tables and `USAGE` on the sequences. Before each operation it sets `crm.tenant_id` to
//!    the operation's tenant (one more round trip).
//!
//! PostgreSQL does not allow `COPY FROM` into a table under row-level security, so with the
//! option on, batches copy into a temporary table of the same shape and move the rows over
//! with one `INSERT ... SELECT`, which the policies check; that is slower than the direct
//! `COPY`. The whole conformance suite runs against a store set up this way, and a test
//! checks that a session set to one tenant can neither read, update nor insert another's
//! rows. To turn the policies off: `ALTER TABLE ... DISABLE ROW LEVEL SECURITY` per table.
//!
//! ## Errors
//!
//! Unique violations are [`Error::Duplicate`], stale versions [`Error::Conflict`], and
//! everything else [`Error::Storage`] with the driver error as its source (a lost
//! connection included). Serialization failures and deadlocks (and an idempotency key that a
//! concurrent batch stored first) are tried again, three tries in all; if the third fails
//! the same way the error is [`Error::Contention`], with the driver error as its source.
//!
//! ## Why these dependencies
//!
//! - `tokio-postgres`: the maintained async PostgreSQL driver; `deadpool-postgres`: its
//!   small, widely used connection pool.
//! - `refinery`: versioned embedded migrations for `tokio-postgres`.
//! - `serde_json`: customer, segment and model records as JSON.
//! - `uuid`: the record ids of due entries (the crate `crm-core`'s ids wrap).
//! - With the feature `tls` only: `tokio-postgres-rustls`, the rustls connector for
//!   `tokio-postgres`, and `rustls` with the ring provider (no C toolchain needed; the email
//!   adapter uses the same stack).

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
mod profiles;
mod sales;
mod schedule;
mod segment;
mod tasks;
#[cfg(feature = "tls")]
mod tls;
mod value;

pub use profiles::FoldJob;
#[cfg(feature = "tls")]
pub use tls::PostgresTls;

use std::future::Future;
use std::str::FromStr;

use crm_core::{Error, Result, TenantId};
use deadpool_postgres::{Manager, Pool};
use tokio_postgres::error::SqlState;
use tokio_postgres::NoTls;

pub(crate) const BACKEND: &str = "postgres";

mod embedded {
    refinery::embed_migrations!("src/sql");
}

/// The number of embedded migrations: the schema version this release migrates to.
pub const SCHEMA_VERSION: usize = 16;

/// Every table of the schema (all keyed by tenant first).
const TENANT_TABLES: [&str; 34] = [
    "customers",
    "customer_emails",
    "customer_phones",
    "customer_tags",
    "customer_external_ids",
    "ownership_changes",
    "interactions",
    "profiles",
    "profile_deltas",
    "value_scores",
    "value_models",
    "value_classes",
    "segments",
    "segment_members",
    "outbox",
    "cases",
    "tasks",
    "kpi_rules",
    "customer_redirects",
    "archive_horizons",
    "customer_audit",
    "grants",
    "sharing_rules",
    "access_log",
    "access_usage",
    "pipelines",
    "opportunities",
    "stage_changes",
    "relationships",
    "account_parents",
    "schedule",
    "schedule_basis",
    "opportunity_contacts",
    "job_leases",
];

fn tenant_hex(tenant: TenantId) -> String {
    tenant
        .as_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Key of the advisory lock held while migrating.
const MIGRATION_LOCK: i64 = 0x63_72_6d_5f_6d_69_67; // "crm_mig"

/// Options for connecting a [`PostgresStore`].
#[derive(Clone, Debug)]
#[must_use = "call connect() to connect"]
pub struct PostgresOptions {
    config: String,
    max_connections: usize,
    migrate: bool,
    row_level_security: bool,
    #[cfg(feature = "tls")]
    tls: Option<PostgresTls>,
}

impl PostgresOptions {
    /// Most connections in the pool (default 8).
    pub fn max_connections(mut self, n: usize) -> Self {
        self.max_connections = n.max(1);
        self
    }

    /// Applies pending migrations when connecting (default: no; call
    /// [`PostgresStore::migrate`] yourself, for example from a deploy step).
    pub fn migrate_on_connect(mut self, yes: bool) -> Self {
        self.migrate = yes;
        self
    }

    /// Sets `crm.tenant_id` (the tenant's id in hex) on the connection before each
    /// operation for a tenant (default: no), for the row-level security policies that
    /// [`PostgresStore::enable_row_level_security`] creates. Costs one round trip per
    /// operation.
    pub fn row_level_security(mut self, yes: bool) -> Self {
        self.row_level_security = yes;
        self
    }

    /// Connects with TLS, trusting the roots in `tls` (feature `tls`). Whether TLS is
    /// required is the connection string's `sslmode`: `require` refuses a server that does
    /// not offer it, `prefer` (the default) falls back to a plain connection, `disable` never
    /// asks. With TLS, the server's certificate must chain to one of the roots and name the
    /// connection's host.
    #[cfg(feature = "tls")]
    pub fn tls(mut self, tls: PostgresTls) -> Self {
        self.tls = Some(tls);
        self
    }

    /// Builds the pool and checks that a connection can be made (and migrates, if asked).
    pub async fn connect(self) -> Result<PostgresStore> {
        let config = tokio_postgres::Config::from_str(&self.config)
            .map_err(|e| Error::validation("connection", e.to_string()))?;
        #[cfg(feature = "tls")]
        let manager = match &self.tls {
            Some(tls) => Manager::new(config, tls.connector()?),
            None => Manager::new(config, NoTls),
        };
        #[cfg(not(feature = "tls"))]
        let manager = Manager::new(config, NoTls);
        let pool = Pool::builder(manager)
            .max_size(self.max_connections)
            .build()
            .map_err(|e| Error::storage(BACKEND, e))?;
        let store = PostgresStore {
            pool,
            row_level_security: self.row_level_security,
        };
        drop(store.connection().await?);
        if self.migrate {
            store.migrate().await?;
        }
        Ok(store)
    }
}

/// Every storage port of `crm-core` on one PostgreSQL database. Cheap to clone.
#[derive(Clone)]
pub struct PostgresStore {
    pool: Pool,
    row_level_security: bool,
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStore")
            .field("max_connections", &self.pool.status().max_size)
            .field("row_level_security", &self.row_level_security)
            .finish_non_exhaustive()
    }
}

pub(crate) fn storage(e: tokio_postgres::Error) -> Error {
    Error::storage(BACKEND, e)
}

/// A key stored by a concurrent transaction between our check and our write.
#[derive(Debug)]
pub(crate) struct RetryableConflict;

impl RetryableConflict {
    pub(crate) fn error() -> Error {
        Error::storage(BACKEND, RetryableConflict)
    }
}

impl std::fmt::Display for RetryableConflict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a concurrent transaction stored the same idempotency key")
    }
}

impl std::error::Error for RetryableConflict {}

/// Whether an error is worth retrying the whole transaction for.
fn transient(e: &Error) -> bool {
    let Error::Storage { source, .. } = e else {
        return false;
    };
    if source.downcast_ref::<RetryableConflict>().is_some() {
        return true;
    }
    source
        .downcast_ref::<tokio_postgres::Error>()
        .and_then(|e| e.code())
        .is_some_and(|c| {
            *c == SqlState::T_R_SERIALIZATION_FAILURE || *c == SqlState::T_R_DEADLOCK_DETECTED
        })
}

impl crm_core::Backend for PostgresStore {
    fn name(&self) -> &'static str {
        BACKEND
    }

    /// Every capability.
    fn capabilities(&self) -> crm_core::Capabilities {
        crm_core::Capabilities::ALL
    }
}

impl PostgresStore {
    /// Options for the server named by a libpq connection string or URL.
    pub fn builder(config: &str) -> PostgresOptions {
        PostgresOptions {
            config: config.to_string(),
            max_connections: 8,
            migrate: false,
            row_level_security: false,
            #[cfg(feature = "tls")]
            tls: None,
        }
    }

    /// Connects with default options.
    pub async fn connect(config: &str) -> Result<PostgresStore> {
        Self::builder(config).connect().await
    }

    /// A pooled connection, with no tenant set.
    async fn connection(&self) -> Result<deadpool_postgres::Object> {
        self.pool
            .get()
            .await
            .map_err(|e| Error::storage(BACKEND, e))
    }

    /// A pooled connection for work on `tenant` (with `crm.tenant_id` set when row-level
    /// security is on).
    pub(crate) async fn client(&self, tenant: TenantId) -> Result<deadpool_postgres::Object> {
        let client = self.connection().await?;
        if self.row_level_security {
            client
                .execute(
                    "SELECT set_config('crm.tenant_id', $1, false)",
                    &[&tenant_hex(tenant)],
                )
                .await
                .map_err(storage)?;
        }
        Ok(client)
    }

    /// Turns on row-level security for every table of the schema: a row is then visible
    /// and writable only when its `tenant_id` equals the session's `crm.tenant_id` (in
    /// hex), for every role but superusers and roles with `BYPASSRLS`, the tables' owner
    /// included (`FORCE ROW LEVEL SECURITY`). Run it once, as the owner, after
    /// [`migrate`](Self::migrate); connect the stores that serve tenants with
    /// [`PostgresOptions::row_level_security`]. Running it again changes nothing.
    pub async fn enable_row_level_security(&self) -> Result<()> {
        let mut client = self.connection().await?;
        let tx = client.transaction().await.map_err(storage)?;
        for table in TENANT_TABLES {
            tx.batch_execute(&format!(
                "ALTER TABLE {table} ENABLE ROW LEVEL SECURITY; \
                 ALTER TABLE {table} FORCE ROW LEVEL SECURITY; \
                 DROP POLICY IF EXISTS crm_tenant ON {table}; \
                 CREATE POLICY crm_tenant ON {table} \
                 USING (tenant_id = decode(current_setting('crm.tenant_id', true), 'hex')) \
                 WITH CHECK (tenant_id = decode(current_setting('crm.tenant_id', true), 'hex'));"
            ))
            .await
            .map_err(storage)?;
        }
        tx.commit().await.map_err(storage)
    }

    /// The name of each embedded migration, in the order they apply: the migration that
    /// takes the schema to version `n` is the `n`-th.
    pub fn migration_names() -> Vec<String> {
        let runner = embedded::migrations::runner();
        let mut migrations: Vec<_> = runner.get_migrations().iter().collect();
        migrations.sort_by_key(|m| m.version());
        migrations.iter().map(|m| m.name().to_string()).collect()
    }

    /// The version of the last migration applied to the database (0 when none is).
    pub async fn schema_version(&self) -> Result<u32> {
        let mut client = self.connection().await?;
        // Before the first migration there is no history table to read.
        let history: bool = client
            .query_one(
                "SELECT to_regclass('refinery_schema_history') IS NOT NULL",
                &[],
            )
            .await
            .map_err(storage)?
            .get(0);
        if !history {
            return Ok(0);
        }
        let last = embedded::migrations::runner()
            .get_last_applied_migration_async(&mut **client)
            .await
            .map_err(|e| Error::storage(BACKEND, e))?;
        Ok(last.map_or(0, |m| u32::try_from(m.version()).unwrap_or(0)))
    }

    /// Applies every embedded migration not applied yet, holding an advisory lock so that
    /// concurrent callers apply each migration once.
    pub async fn migrate(&self) -> Result<()> {
        let mut client = self.connection().await?;
        client
            .execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK])
            .await
            .map_err(storage)?;
        let result = embedded::migrations::runner()
            .run_async(&mut **client)
            .await
            .map(|_| ())
            .map_err(|e| Error::storage(BACKEND, e));
        let unlocked = client
            .execute("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK])
            .await
            .map_err(storage);
        result.and(unlocked.map(|_| ()))
    }

    /// Runs `op` again (up to three tries in all) when it fails with a serialization failure,
    /// a deadlock, or an idempotency key stored concurrently; after the third such failure
    /// the error is [`Error::Contention`].
    pub(crate) async fn retrying<T, F, Fut>(&self, mut op: F) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        let mut tries = 0;
        loop {
            tries += 1;
            match op().await {
                Err(e) if transient(&e) => {
                    if tries == 3 {
                        return Err(match e {
                            Error::Storage { source, .. } => Error::Contention {
                                backend: BACKEND,
                                source,
                            },
                            e => e,
                        });
                    }
                    tracing::debug!(tries, "retrying a transient PostgreSQL failure");
                }
                other => return other,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #[tokio::test]
    async fn contention_is_reported_after_three_tries() {
        use std::sync::atomic::{AtomicU32, Ordering};
        // A pool makes no connection until asked for one.
        let config = tokio_postgres::Config::new();
        let pool = deadpool_postgres::Pool::builder(deadpool_postgres::Manager::new(
            config,
            tokio_postgres::NoTls,
        ))
        .build()
        .unwrap();
        let store = super::PostgresStore {
            pool,
            row_level_security: false,
        };
        let tries = AtomicU32::new(0);
        let result: crm_core::Result<()> = store
            .retrying(|| async {
                tries.fetch_add(1, Ordering::Relaxed);
                Err(super::RetryableConflict::error())
            })
            .await;
        assert_eq!(tries.load(Ordering::Relaxed), 3);
        match result {
            Err(crm_core::Error::Contention { backend, source }) => {
                assert_eq!(backend, "postgres");
                assert!(source.downcast_ref::<super::RetryableConflict>().is_some());
            }
            other => panic!("expected contention, got {other:?}"),
        }
        // Other failures are not tried again.
        tries.store(0, Ordering::Relaxed);
        let result: crm_core::Result<()> = store
            .retrying(|| async {
                tries.fetch_add(1, Ordering::Relaxed);
                Err(crm_core::Error::validation("x", "no"))
            })
            .await;
        assert_eq!(tries.load(Ordering::Relaxed), 1);
        assert!(matches!(result, Err(crm_core::Error::Validation { .. })));
    }

    #[test]
    fn row_level_security_covers_every_table_of_the_schema() {
        let mut created: Vec<String> = super::embedded::migrations::runner()
            .get_migrations()
            .iter()
            .flat_map(|m| {
                m.sql()
                    .unwrap_or_default()
                    .split("CREATE TABLE ")
                    .skip(1)
                    .map(|rest| rest.split_whitespace().next().unwrap_or("").to_string())
                    .collect::<Vec<_>>()
            })
            .collect();
        created.sort();
        let mut covered: Vec<String> = super::TENANT_TABLES.iter().map(|t| t.to_string()).collect();
        covered.sort();
        assert_eq!(created, covered);
    }

    #[test]
    fn schema_version_counts_the_embedded_migrations() {
        let runner = super::embedded::migrations::runner();
        assert_eq!(runner.get_migrations().len(), super::SCHEMA_VERSION);
    }
}
