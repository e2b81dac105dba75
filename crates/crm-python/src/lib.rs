//! Python bindings of the CRM core: the module `crm_core`, built with PyO3 and packaged
//! with maturin (`pyproject.toml`; the pure-Python part and the type stubs are under
//! `python/crm_core`).
//!
//! The API is synchronous: each `Crm` holds a tokio runtime, and every call runs the core
//! on it with the GIL released, so other Python threads go on meanwhile. The package's
//! `crm_core.aio` (pure Python) offers each call as a coroutine for asyncio, run on a
//! worker thread. Values cross as
//! Python types: ids as `uuid.UUID`, instants as aware `datetime` (stored in UTC; a naive
//! one is refused), amounts as `decimal.Decimal` (a float is refused: money stays exact),
//! custom attributes as a `dict`. Errors are exceptions mirroring the core's kinds
//! (`ValidationError` with `.field`, `ConflictError` with `.expected` and `.actual`,
//! `NotFoundError`, ...), all subclasses of `CrmError`.
//!
//! ## Why these dependencies
//!
//! - `pyo3` (abi3 for CPython 3.9 and later, one wheel for every version): the bindings,
//!   with its `chrono`, `rust_decimal` and `uuid` conversions for the core's value types.
//! - `tokio`: the runtime the core's async API runs on inside the module.
//! - `async-trait`: the core's `Notifier`, `EventSink` and `Directory` ports, implemented
//!   over Python callables (which run on tokio's blocking pool, holding the GIL only
//!   there).
//! - `serde` (with `serde_json`): records without a class of their own (KPI rules, reports,
//!   exports, envelopes) cross as dicts in the core's serde form, through Python's `json`.

mod cases;
mod errors;
mod notify;
mod segments;
mod tasks;
mod tenant;
mod types;
mod value;

use std::sync::Arc;

use pyo3::prelude::*;

pub use errors::to_py;
use tenant::Tenant;
use types::{BatchReport, Customer, Interaction, Profile, TimelinePage};

/// The core over one store, with the runtime its calls run on.
#[pyclass(module = "crm_core", frozen)]
pub struct Crm {
    crm: crm::Crm,
    runtime: Arc<tokio::runtime::Runtime>,
}

impl Crm {
    fn over(
        events: bool,
        storage: impl FnOnce(&tokio::runtime::Runtime) -> crm::Result<Arc<dyn crm::Storage>>,
    ) -> PyResult<Self> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(|e| errors::StorageError::new_err(format!("cannot start the runtime: {e}")))?;
        let storage = storage(&runtime).map_err(to_py)?;
        Ok(Crm {
            crm: crm::Crm::new(storage).with_events(events),
            runtime: Arc::new(runtime),
        })
    }
}

#[pymethods]
impl Crm {
    /// Opens (creating if needed) a SQLite database file and migrates it. With `events`,
    /// every change also writes a domain event into the outbox (see `Tenant.dispatch`).
    #[staticmethod]
    #[pyo3(signature = (path, *, events=false))]
    fn open_sqlite(py: Python<'_>, path: std::path::PathBuf, events: bool) -> PyResult<Self> {
        py.detach(|| {
            Crm::over(events, |_| {
                Ok(Arc::new(crm::sqlite::SqliteStore::open(&path)?) as Arc<dyn crm::Storage>)
            })
        })
    }

    /// A private in-memory SQLite database, gone when this object is.
    #[staticmethod]
    #[pyo3(signature = (*, events=false))]
    fn open_in_memory(py: Python<'_>, events: bool) -> PyResult<Self> {
        py.detach(|| {
            Crm::over(events, |_| {
                Ok(Arc::new(crm::sqlite::SqliteStore::open_in_memory()?) as Arc<dyn crm::Storage>)
            })
        })
    }

    /// Connects to PostgreSQL (a libpq connection string or URL) and migrates the schema.
    #[staticmethod]
    #[pyo3(signature = (url, *, events=false))]
    fn open_postgres(py: Python<'_>, url: String, events: bool) -> PyResult<Self> {
        py.detach(|| {
            Crm::over(events, |runtime| {
                runtime.block_on(async {
                    let store = crm::postgres::PostgresStore::builder(&url)
                        .migrate_on_connect(true)
                        .connect()
                        .await?;
                    Ok(Arc::new(store) as Arc<dyn crm::Storage>)
                })
            })
        })
    }

    /// The handle for one tenant (a `uuid.UUID`); everything it does stays in that tenant.
    fn tenant(&self, tenant: uuid::Uuid) -> Tenant {
        Tenant::new(
            self.crm.tenant(crm::TenantId::from_uuid(tenant)),
            self.runtime.clone(),
        )
    }

    fn __repr__(&self) -> String {
        format!("Crm(backend={:?})", self.crm.storage().name())
    }
}

/// The module: `crm_core._native`, re-exported by the package `crm_core`.
#[pymodule]
#[pyo3(name = "_native")]
pub fn native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Crm>()?;
    m.add_class::<Tenant>()?;
    m.add_class::<Customer>()?;
    m.add_class::<Interaction>()?;
    m.add_class::<Profile>()?;
    m.add_class::<BatchReport>()?;
    m.add_class::<TimelinePage>()?;
    m.add_class::<cases::Case>()?;
    m.add_class::<cases::ScoreLine>()?;
    m.add_class::<tasks::Task>()?;
    m.add_class::<value::ValueClasses>()?;
    m.add_class::<value::ValueScores>()?;
    errors::register(m)?;
    Ok(())
}
