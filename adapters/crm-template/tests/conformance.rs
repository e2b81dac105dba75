//! The conformance groups of the ports the template implements. A group the adapter does
//! not declare the capabilities of fails, naming them.

use std::sync::Arc;

use crm_template::TemplateStore;
use crm_testkit::Fixture;

async fn template() -> Fixture {
    Fixture::new(Arc::new(TemplateStore::new()))
}

crm_testkit::conformance_tests!(template; customers, interactions, profiles);
