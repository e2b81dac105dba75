//! Ingest through the Python binding against the same through Rust directly, in one run.
//!
//! `cargo bench -p crm-python --bench ingest [-- --rows N --customers M --batch B]`
//! (defaults: 1,000,000 rows, 100,000 customers, batches of 10,000).
//!
//! The process embeds CPython with the binding's module registered (as `_native`, the same
//! code `crm_core` loads), and two SQLite files with the same customers:
//!
//! - **Rust**: `crm.tenant(t).interactions().log_batch(batch)` on the first file, on a
//!   runtime of two worker threads (as the module's).
//! - **Python**: `tenant.log_batch(dicts)` through the interpreter on the second file, one
//!   dict per interaction with Python values (`uuid.UUID`, an aware `datetime`,
//!   `decimal.Decimal`, ...), which the binding checks and converts.
//!
//! Both sides get the same generated batches, alternating which goes first. Building the
//! dicts is the host's work: timed apart (here they are built through the C API, faster
//! than a Python loop would) and reported beside the ratio.

use crm_testkit::bench_arg as arg;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration as StdDuration, Instant};

use crm::chrono::{DateTime, Duration, Utc};
use crm::sqlite::SqliteStore;
use crm::{Crm, CustomerId, CustomerStore, Interaction, TenantId, WriteOptions};
use crm_python::native;
use crm_testkit::Generator;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};

fn rate(rows: usize, t: StdDuration) -> f64 {
    rows as f64 / t.as_secs_f64()
}

/// The interactions as the dicts a Python host passes to `log_batch`.
fn dicts<'py>(py: Python<'py>, batch: &[Interaction]) -> PyResult<Bound<'py, PyList>> {
    let list = PyList::empty(py);
    for i in batch {
        let d = PyDict::new(py);
        d.set_item("customer", i.customer.as_uuid())?;
        d.set_item("channel", i.channel.as_str())?;
        d.set_item("kind", i.kind.as_str())?;
        d.set_item("occurred_at", i.occurred_at)?;
        d.set_item("direction", i.direction.as_str())?;
        if let Some(u) = i.handled_by {
            d.set_item("handled_by", u.as_uuid())?;
        }
        if let Some(s) = &i.subject {
            d.set_item("subject", s)?;
        }
        if let Some(b) = &i.body {
            d.set_item("body", b)?;
        }
        if let Some(m) = &i.amount {
            d.set_item("amount", m.amount())?;
            d.set_item("currency", m.currency().code())?;
        }
        if let Some(s) = i.duration_secs {
            d.set_item("duration_secs", s)?;
        }
        if let Some(s) = i.wait_secs {
            d.set_item("wait_secs", s)?;
        }
        d.set_item(
            "key",
            (i.key.source().as_str(), i.key.external_id().to_string()),
        )?;
        list.append(d)?;
    }
    Ok(list)
}

/// A database file holding `customers` for `tenant`.
fn with_customers(
    runtime: &tokio::runtime::Runtime,
    path: &Path,
    tenant: TenantId,
    customers: &[crm::Customer],
) -> SqliteStore {
    let store = SqliteStore::open(path).expect("open a database");
    runtime.block_on(async {
        for chunk in customers.chunks(10_000) {
            store
                .insert_customers(tenant, chunk.to_vec(), WriteOptions::new())
                .await
                .expect("insert customers");
        }
    });
    store
}

fn main() {
    let rows = arg("--rows", 1_000_000);
    let n_customers = arg("--customers", 100_000).max(1);
    let batch_size = arg("--batch", 10_000).max(1);
    let dir = tempfile::tempdir().expect("temp dir");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");

    let tenant = TenantId::new();
    let mut gen = Generator::new(2024);
    let customers: Vec<crm::Customer> = (0..n_customers)
        .map(|_| {
            let mut c = gen.customer();
            c.version = 1;
            c
        })
        .collect();
    let ids: Vec<CustomerId> = customers.iter().map(|c| c.id).collect();
    let rust_store = with_customers(&runtime, &dir.path().join("rust.db"), tenant, &customers);
    let python_path = dir.path().join("python.db");
    drop(with_customers(&runtime, &python_path, tenant, &customers));
    drop(customers);
    let crm = Crm::new(Arc::new(rust_store));

    pyo3::append_to_inittab!(native);
    Python::initialize();
    let py_tenant: Py<PyAny> = Python::attach(|py| -> PyResult<Py<PyAny>> {
        let module = py.import("_native")?;
        let uuid = py.import("uuid")?.getattr("UUID")?;
        let id = uuid.call1((tenant.as_uuid().to_string(),))?;
        let opened = module
            .getattr("Crm")?
            .call_method1("open_sqlite", (python_path.as_path(),))?;
        Ok(opened.call_method1("tenant", (id,))?.unbind())
    })
    .expect("the module opens the database");

    let start: DateTime<Utc> = DateTime::from_timestamp(1_735_689_600, 0).expect("2025-01-01");
    let per_batch_span = Duration::days(365) / (rows.div_ceil(batch_size) as i32).max(1);
    let (mut t_rust, mut t_python, mut t_dicts) =
        (StdDuration::ZERO, StdDuration::ZERO, StdDuration::ZERO);
    let (mut done, mut batch_no) = (0, 0);
    let (mut rust_inserted, mut python_inserted) = (0, 0);
    while done < rows {
        let n = batch_size.min(rows - done);
        let from = start + per_batch_span * batch_no;
        let batch = gen.interactions(&ids, n, from, per_batch_span);
        let python_first = batch_no % 2 == 0;
        for side in 0..2 {
            if (side == 0) == python_first {
                let inserted = Python::attach(|py| -> PyResult<usize> {
                    let t = Instant::now();
                    let list = dicts(py, &batch)?;
                    t_dicts += t.elapsed();
                    let t = Instant::now();
                    let report = py_tenant.call_method1(py, "log_batch", (list,))?;
                    t_python += t.elapsed();
                    report.getattr(py, "inserted")?.extract(py)
                })
                .expect("log a batch through Python");
                python_inserted += inserted;
            } else {
                let copy = batch.clone();
                let t = Instant::now();
                let report = runtime
                    .block_on(crm.tenant(tenant).interactions().log_batch(copy))
                    .expect("log a batch through Rust");
                t_rust += t.elapsed();
                rust_inserted += report.inserted;
            }
        }
        done += n;
        batch_no += 1;
    }
    assert_eq!(rust_inserted, rows, "every row is new on the Rust side");
    assert_eq!(python_inserted, rows, "every row is new on the Python side");

    let (r, p) = (rate(rows, t_rust), rate(rows, t_python));
    let with_dicts = rate(rows, t_python + t_dicts);
    println!("rows {rows}, customers {n_customers}, batch {batch_size}");
    println!(
        "Rust log_batch              : {r:>9.0} rows/s ({:.2} s)",
        t_rust.as_secs_f64()
    );
    println!(
        "Python log_batch            : {p:>9.0} rows/s ({:.2} s)",
        t_python.as_secs_f64()
    );
    println!(
        "building the dicts         : {:>9.0} rows/s ({:.2} s)",
        rate(rows, t_dicts),
        t_dicts.as_secs_f64()
    );
    println!("ratio Python/Rust           : {:.2} (goal >= 0.70)", p / r);
    println!(
        "ratio with the dicts built  : {:.2} ({with_dicts:.0} rows/s)",
        with_dicts / r
    );
}
