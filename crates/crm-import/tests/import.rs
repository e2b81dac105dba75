//! The importer's own behaviour: mapping checks, options, progress. (What it writes is
//! checked in `tests/writes.rs`, through the core, on the in-memory store and SQLite.)

use std::sync::Arc;

use crm_core::{Crm, Error, TenantId};
use crm_import::{
    import_customers, import_interactions, CustomerMapping, ImportOptions, InteractionMapping,
};
use crm_testkit::MemoryStore;

fn crm() -> Crm {
    Crm::new(Arc::new(MemoryStore::new()))
}

#[tokio::test]
async fn a_mapped_column_missing_from_the_header_is_refused_before_reading() {
    let mapping = CustomerMapping::new("erp", "no").name("name").email("mail");
    let err = import_customers(
        &crm().tenant(TenantId::new()),
        "no,name,email\nC1,Ada,ada@example.com\n".as_bytes(),
        &mapping,
        &ImportOptions::default(),
        |_| {},
    )
    .await
    .unwrap_err();
    match err {
        Error::Validation { field, reason } => {
            assert_eq!(field, "mapping.emails");
            assert!(reason.contains("\"mail\""), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    let err = import_interactions(
        &crm().tenant(TenantId::new()),
        "id,customer,channel,kind\n".as_bytes(),
        &InteractionMapping::new("pos", "id", "customer", "channel", "kind", "at"),
        &ImportOptions::default(),
        |_| {},
    )
    .await
    .unwrap_err();
    assert!(matches!(err, Error::Validation { field, .. } if field == "mapping.occurred_at"));
}

#[tokio::test]
async fn batch_size_must_be_in_range() {
    for batch_size in [0, 10_001] {
        let err = import_customers(
            &crm().tenant(TenantId::new()),
            "no\n".as_bytes(),
            &CustomerMapping::new("erp", "no"),
            &ImportOptions {
                batch_size,
                ..ImportOptions::default()
            },
            |_| {},
        )
        .await
        .unwrap_err();
        assert!(matches!(err, Error::Validation { field, .. } if field == "batch_size"));
    }
}

#[tokio::test]
async fn progress_is_reported_per_batch_up_to_the_whole_file() {
    let mut file = String::from("no;name\n");
    for i in 0..25 {
        file.push_str(&format!("C{i};Person {i}\n"));
    }
    // A row that is not UTF-8 is reported and skipped, not fatal.
    let mut file = file.into_bytes();
    file.extend_from_slice(b"C99;\xff\xfe\n");
    let mut seen = Vec::new();
    let report = import_customers(
        &crm().tenant(TenantId::new()),
        std::io::Cursor::new(file.clone()),
        &CustomerMapping::new("erp", "no").name("name"),
        &ImportOptions {
            batch_size: 10,
            delimiter: b';',
        },
        |p| seen.push(*p),
    )
    .await
    .unwrap();
    assert_eq!(report.created, 25, "{report:?}");
    assert_eq!(report.rows, 26);
    assert_eq!(report.rejected.len(), 1);
    assert_eq!(
        (report.rejected[0].line, report.rejected[0].column.as_str()),
        (27, "(row)")
    );
    assert_eq!(seen.len(), 4, "{seen:?}");
    assert_eq!(
        seen.iter().map(|p| p.committed).collect::<Vec<_>>(),
        [10, 20, 25, 25]
    );
    assert_eq!(
        seen.iter().map(|p| p.done).collect::<Vec<_>>(),
        [false, false, false, true]
    );
    let last = seen.last().unwrap();
    assert_eq!(last.bytes, file.len() as u64);
    assert_eq!(last.rows, report.rows);
    assert!(seen.windows(2).all(|w| w[0].bytes <= w[1].bytes));
}

#[tokio::test]
async fn rows_with_too_few_or_too_many_fields_are_rejected() {
    let file =
        "no,name,email\nC1,Ada,ada@example.com\nC2,Bob\nC3,Cy,cy@example.com,extra\nC4,Di,\n";
    let report = import_customers(
        &crm().tenant(TenantId::new()),
        file.as_bytes(),
        &CustomerMapping::new("erp", "no")
            .name("name")
            .email("email"),
        &ImportOptions::default(),
        |_| {},
    )
    .await
    .unwrap();
    assert_eq!(
        report.created, 2,
        "C1 and C4 (an empty email field is a field): {report:?}"
    );
    let refused: Vec<(u64, &str)> = report
        .rejected
        .iter()
        .map(|r| (r.line, r.reason.as_str()))
        .collect();
    assert_eq!(
        refused,
        [
            (3, "has 2 fields where the header has 3"),
            (4, "has 4 fields where the header has 3")
        ]
    );
    let interactions = "id,customer,channel,kind,at\nI1,C1,phone,call\n";
    let report = import_interactions(
        &crm().tenant(TenantId::new()),
        interactions.as_bytes(),
        &InteractionMapping::new("pos", "id", "customer", "channel", "kind", "at"),
        &ImportOptions::default(),
        |_| {},
    )
    .await
    .unwrap();
    assert_eq!((report.inserted, report.rejected.len()), (0, 1));
}

#[tokio::test]
async fn the_same_id_twice_counts_one_customer_created() {
    let crm = crm();
    let tenant = TenantId::new();
    let file =
        "no,name,email\nC1,Ada,ada@example.com\nC1,Ada,ada@example.org\nC1,Ada,ada@example.org\n";
    let report = import_customers(
        &crm.tenant(tenant),
        file.as_bytes(),
        &CustomerMapping::new("erp", "no")
            .name("name")
            .email("email"),
        &ImportOptions::default(),
        |_| {},
    )
    .await
    .unwrap();
    assert_eq!(
        (report.created, report.updated, report.unchanged),
        (1, 1, 1),
        "{report:?}"
    );
    let all = crm
        .tenant(tenant)
        .customers()
        .search(
            &crm_core::CustomerQuery::all(),
            &crm_core::PageRequest::first(10),
        )
        .await
        .unwrap();
    assert_eq!(all.items.len(), 1);
    assert_eq!(all.items[0].emails.len(), 2);
}

/// A reader that fails after some bytes, as a network file system or a pipe can.
struct Failing {
    data: Vec<u8>,
    at: usize,
}

impl std::io::Read for Failing {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.at >= self.data.len() {
            return Err(std::io::Error::other("the connection dropped"));
        }
        let n = buf.len().min(self.data.len() - self.at).min(64);
        buf[..n].copy_from_slice(&self.data[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

#[tokio::test]
async fn a_read_error_mid_file_is_an_error_not_a_short_success() {
    let mut data = String::from("no,name\n");
    for i in 0..50 {
        data.push_str(&format!("C{i},Person {i}\n"));
    }
    let err = import_customers(
        &crm().tenant(TenantId::new()),
        Failing {
            data: data.into_bytes(),
            at: 0,
        },
        &CustomerMapping::new("erp", "no").name("name"),
        &ImportOptions::default(),
        |_| {},
    )
    .await
    .unwrap_err();
    assert!(
        matches!(&err, Error::Io { what: "import input", source } if source.to_string().contains("dropped")),
        "{err:?}"
    );
}

#[tokio::test]
async fn many_refused_rows_in_one_batch_are_each_reported_once() {
    // Every other row names no one (a new customer needs a name): 500 refusals in a
    // batch of 1,000, reported with their lines; the named ones are all created.
    let mut file = String::from("no,name\n");
    for i in 0..1000 {
        let name = if i % 2 == 0 {
            format!("Person {i}")
        } else {
            String::new()
        };
        file.push_str(&format!("C{i},{name}\n"));
    }
    let report = import_customers(
        &crm().tenant(TenantId::new()),
        std::io::Cursor::new(file.into_bytes()),
        &CustomerMapping::new("erp", "no").name("name"),
        &ImportOptions {
            batch_size: 1000,
            ..ImportOptions::default()
        },
        |_| {},
    )
    .await
    .unwrap();
    assert_eq!(report.created, 500);
    assert_eq!(report.rejected.len(), 500);
    let lines: Vec<u64> = report.rejected.iter().map(|r| r.line).collect();
    assert_eq!(lines, (0..500).map(|k| 3 + 2 * k).collect::<Vec<u64>>());
    assert!(
        report.rejected.iter().all(|r| r.column == "name"),
        "{:?}",
        report.rejected[0]
    );
}

/// Opens on a signal from another task: read on the executor's only thread, it would wait
/// for a task that cannot run, and give up with an error after ten seconds.
struct Gate {
    signal: std::sync::mpsc::Receiver<()>,
    data: &'static [u8],
    open: bool,
}

impl std::io::Read for Gate {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if !self.open {
            self.signal
                .recv_timeout(std::time::Duration::from_secs(10))
                .map_err(std::io::Error::other)?;
            self.open = true;
        }
        std::io::Read::read(&mut self.data, buf)
    }
}

#[tokio::test(flavor = "current_thread")]
async fn a_blocking_reader_does_not_hold_the_executor() {
    let (tx, signal) = std::sync::mpsc::channel();
    let opener = tokio::spawn(async move { tx.send(()).expect("the gate listens") });
    let gate = Gate {
        signal,
        data: b"no,name\nC1,Ada\n",
        open: false,
    };
    let report = import_customers(
        &crm().tenant(TenantId::new()),
        gate,
        &CustomerMapping::new("erp", "no").name("name"),
        &ImportOptions::default(),
        |_| {},
    )
    .await
    .expect("the gate was opened by a task on the same thread while the reader waited");
    opener.await.unwrap();
    assert_eq!((report.rows, report.created), (1, 1));
}
