//! An embeddable CRM core: the one dependency a host adds.
//!
//! This crate gathers the workspace behind features, so a host names one crate and one
//! version:
//!
//! | feature | what it adds | module |
//! | --- | --- | --- |
//! | `sqlite` (default) | storage on SQLite, the embedded default | [`sqlite`] |
//! | `postgres` | storage on PostgreSQL (`postgres-tls`: with rustls) | `postgres` |
//! | `email` | a notifier over SMTP | `email` |
//! | `webhook` | domain events as signed HTTPS webhooks, and the receiver's check | `webhook` |
//! | `analytics` | BG/NBD, Gamma-Gamma and CLV models | `analytics` |
//! | `import` | streaming CSV import | `import` |
//! | `mock` | `mockall` mocks of every port, for host tests | `ports` |
//!
//! Everything of the domain crate (`crm-core`) is here at the root: [`Crm`], [`Customer`],
//! [`Interaction`], the ports, [`Error`], and its modules ([`segment`], [`notify`], ...).
//! The third-party crates whose types appear in the API are re-exported at the versions
//! the core uses: [`chrono`], [`chrono_tz`], [`rust_decimal`] and [`serde_json`]. The
//! [`prelude`] holds what most programs use.
//!
//! ```
//! use crm::prelude::*;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<()> {
//! let crm = Crm::new(std::sync::Arc::new(SqliteStore::open_in_memory()?));
//! let acme = crm.tenant(TenantId::new());
//! let ann = acme
//!     .customers()
//!     .register(Customer::person("Ann Lee").email("ann@example.com").build()?)
//!     .await?;
//! let paid = Money::parse("19.90", "EUR")?;
//! assert_eq!(paid.amount(), crm::rust_decimal::Decimal::new(1990, 2));
//! assert_eq!(acme.customers().get(ann.id).await?.name.as_str(), "Ann Lee");
//! # Ok(())
//! # }
//! ```
//!
//! The SQLite adapter runs its database work on tokio's blocking pool: call it from inside
//! a tokio runtime (either flavour).

#![cfg_attr(docsrs, feature(doc_cfg))]

pub use crm_core::*;

pub use chrono;
pub use chrono_tz;
pub use rust_decimal;
pub use serde_json;

/// Storage on SQLite (`crm-sqlite`): the embedded default.
#[cfg(feature = "sqlite")]
pub use crm_sqlite as sqlite;

/// Storage on PostgreSQL (`crm-postgres`).
#[cfg(feature = "postgres")]
pub use crm_postgres as postgres;

/// A notifier over SMTP (`crm-email`).
#[cfg(feature = "email")]
pub use crm_email as email;

/// Domain events as signed HTTPS webhooks (`crm-webhook`).
#[cfg(feature = "webhook")]
pub use crm_webhook as webhook;

/// Customer-value analytics (`crm-analytics`).
#[cfg(feature = "analytics")]
pub use crm_analytics as analytics;

/// Streaming CSV import (`crm-import`).
#[cfg(feature = "import")]
pub use crm_import as import;

/// What most programs use: the facade, the records, ids, values, paging, errors, and the
/// stores of the enabled adapters.
pub mod prelude {
    pub use crm_core::{
        AttrValue, Channel, Clock, Crm, Customer, CustomerId, Direction, EmailAddress, Error,
        Interaction, InteractionKind, Lifecycle, ManualClock, Money, Page, PageRequest,
        PhoneNumber, Profile, Result, Storage, SystemClock, TenantId, UserId,
    };

    #[cfg(feature = "sqlite")]
    pub use crm_sqlite::SqliteStore;

    #[cfg(feature = "postgres")]
    pub use crm_postgres::{PostgresOptions, PostgresStore};

    #[cfg(feature = "email")]
    pub use crm_email::{SmtpConfig, SmtpNotifier};

    #[cfg(feature = "webhook")]
    pub use crm_webhook::{WebhookConfig, WebhookSecret, WebhookSink};
}
