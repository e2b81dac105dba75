//! The importer's own behaviour: mapping checks, options, progress. (What it writes is
//! checked on every adapter by the conformance suite of `crm-testkit`.)

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
        &crm(),
        TenantId::new(),
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
        &crm(),
        TenantId::new(),
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
            &crm(),
            TenantId::new(),
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
        &crm(),
        TenantId::new(),
        file.as_slice(),
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
