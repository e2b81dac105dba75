//! # crm-core
//!
//! The pure domain core of an embeddable CRM: customers, their interactions on every
//! channel, per-customer profiles kept as mergeable deltas, the ports (traits) that storage
//! and messaging adapters implement, notifications with their outbox and dispatcher
//! ([`notify`]), and the [`Crm`] use-case facade. No database, SMTP or async-runtime
//! dependency: the only output is written by the development [`notify::LogNotifier`] and
//! [`notify::JsonLinesSink`], to a writer the host gives them.
//!
//! ```
//! use crm_core::{Customer, Lifecycle, Error};
//!
//! let ann = Customer::person("Ann Lee")
//!     .email("ann@example.com")
//!     .phone("+49 30 1234567")
//!     .lifecycle(Lifecycle::Active)
//!     .tag("vip")
//!     .build()?;
//! assert_eq!(ann.primary_phone().unwrap().as_str(), "+49301234567");
//!
//! // Bad input is a typed error naming the field, never a panic.
//! match Customer::person("Bob").email("not-an-address").build() {
//!     Err(Error::Validation { field, .. }) => assert_eq!(field, "emails[0]"),
//!     other => panic!("unexpected {other:?}"),
//! }
//! # Ok::<(), Error>(())
//! ```
//!
//! ## Why these dependencies
//!
//! - `serde`, `thiserror`, `async-trait`, `chrono`, `rust_decimal`: the project's chosen
//!   building blocks for serialisation, errors, object-safe async ports, time and exact money.
//! - `chrono-tz`: the IANA time zone database, for business calendars across DST changes.
//! - `uuid` (v7): time-ordered ids, so keys arrive in index order and pages sort by creation.
//! - `email_address`: RFC 5321/5322 address syntax, small and dependency-free.
//! - `phonenumber`: E.164 normalisation and per-country validation from libphonenumber's
//!   metadata; a hand-written check cannot know every numbering plan.
//! - `iso_currency`: the ISO 4217 table, generated from the standard's data.
//! - `serde_json`: the data of notification templates is free-form JSON.
//! - `strsim`: string similarity (Jaro–Winkler) for fuzzy name matching in duplicate
//!   detection ([`dedup`]); small, dependency-free and widely used.
//! - `tracing`: spans around every use case, free when no subscriber is installed.
//! - `tokio` (features `sync` and `io-util` only, no runtime): the oneshot channel through
//!   which [`blocking::run`] hands back work done off the executor, and the `AsyncWrite`
//!   archives are written to. Any executor can await them.
//! - `futures-util` (`alloc` only, no runtime): `buffer_unordered`, so scheduled runs look
//!   at a page of due records concurrently and the store's round trips overlap; already in
//!   the tree of every adapter.
//! - `mockall` (feature `mock` only): mocks of every port, and `mock::MockStorage` of the
//!   whole storage, for host tests.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod access;
pub mod audit;
pub mod blocking;
pub mod calendar;
pub mod case;
pub mod clock;
pub mod clv;
pub mod customer;
pub mod dedup;
pub mod error;
pub mod handover;
pub mod id;
pub mod interaction;
pub mod kpi;
pub mod merge;
#[cfg(any(test, feature = "mock"))]
pub mod mock;
pub mod notify;
pub mod page;
pub mod pool;
pub mod ports;
pub mod privacy;
pub mod profile;
pub mod retention;
pub mod sales;
pub mod schedule;
pub mod segment;
pub mod service;
pub mod sla;
pub mod sync;
pub mod task;
pub mod value;
pub mod value_class;

pub use clock::{Clock, ManualClock, SystemClock};
pub use clv::{PurchaseModel, SpendModel, ValueClasses, ValueModel, ValueScores};
pub use customer::{
    Customer, CustomerBuilder, CustomerQuery, Lifecycle, MarketingConsent, OwnershipChange,
    PartyKind,
};
pub use error::{BoxError, Error, Result};
pub use id::{
    CaseId, CustomerId, InteractionId, MessageId, OpportunityId, PipelineId, SegmentId, TaskId,
    TeamId, TenantId, UserId,
};
pub use interaction::{
    BatchReport, Channel, Direction, Interaction, InteractionBuilder, InteractionKind,
};
pub use notify::{Notification, Notifier, OutboxStore, Recipient};
pub use page::{Cursor, Page, PageRequest};
pub use ports::{
    AccessStore, Backend, Capabilities, Capability, CaseStore, CustomerStore, InteractionStore,
    KpiRuleStore, ProfileStore, SalesStore, ScheduleStore, SegmentStore, Storage, TaskStore,
    ValueStore, WriteOptions,
};
pub use profile::Profile;
pub use service::{Crm, TenantCrm, Transfer};
pub use value::{
    AttrKey, AttrValue, Attributes, Currency, DisplayName, EmailAddress, ExternalRef, Money,
    PhoneNumber, SourceSystem, StageKey, Tag,
};
