//! The CSV importer on arbitrary bytes with a fixed mapping of customers and one of
//! interactions: no panic, every row is counted once (written or rejected with its line),
//! and every customer written reads back with the name its row gave.
#![no_main]

use std::sync::Arc;

use crm_core::{Crm, CustomerQuery, PageRequest, TenantId};
use crm_import::{
    import_customers, import_interactions, CustomerMapping, ImportOptions, InteractionMapping,
};
use crm_testkit::MemoryStore;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a runtime");
    runtime.block_on(async {
        let crm = Crm::new(Arc::new(MemoryStore::new()));
        let tenant = TenantId::new();
        let options = ImportOptions {
            batch_size: 3,
            ..ImportOptions::default()
        };
        let mut file = b"no,name,email,phone,tags,seats\n".to_vec();
        file.extend_from_slice(data);
        let mapping = CustomerMapping::new("erp", "no")
            .name("name")
            .email("email")
            .phone("phone")
            .tags("tags")
            .attribute("seats", "seats", crm_core::segment::AttrType::Number)
            .expect("a valid attribute key");
        let report = import_customers(&crm.tenant(tenant), std::io::Cursor::new(file), &mapping, &options, |_| {})
            .await
            .expect("an in-memory import does not fail");
        let written = report.created + report.updated + report.unchanged;
        assert_eq!(written + report.rejected.len() as u64, report.rows, "{report:?}");
        let stored = crm
            .tenant(tenant).customers().search(&CustomerQuery::all(), &PageRequest::first(1000))
            .await
            .expect("a listing");
        assert_eq!(stored.items.len() as u64, report.created, "{report:?}");
        for c in &stored.items {
            assert_eq!(crm.tenant(tenant).customers().get(c.id).await.expect("reads back"), *c);
        }
        let mut file = b"id,customer,channel,kind,at,amount,currency\n".to_vec();
        file.extend_from_slice(data);
        let mapping = InteractionMapping::new("pos", "id", "customer", "channel", "kind", "at")
            .customer_source("erp")
            .amount("amount", "currency");
        let report =
            import_interactions(&crm.tenant(tenant), std::io::Cursor::new(file), &mapping, &options, |_| {})
                .await
                .expect("an in-memory import does not fail");
        assert_eq!(
            report.inserted + report.duplicates + report.rejected.len() as u64,
            report.rows,
            "{report:?}"
        );
    });
});
