//! Event schemas: the files under `crates/crm-core/schemas/events/` are what the payload
//! types generate, and one real event of every kind validates against its file.
//!
//! After a deliberate change to a payload, regenerate the current version's files with
//! `CRM_WRITE_SCHEMAS=1 cargo test -p crm-testkit --test event_schemas` (only for added
//! optional fields; anything else needs the kind's next schema version first: see
//! `crm_core::notify::payload`).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{Duration, TimeZone, Utc};
use crm_core::calendar::{BusinessCalendar, Interval, Week};
use crm_core::case::{Case, CaseEventKind, CaseKind, CaseStatus};
use crm_core::kpi::{KpiAction, KpiEngine, KpiMetric, KpiRule, KpiScope};
use crm_core::merge::MergePolicy;
use crm_core::notify::payload::event_schema;
use crm_core::notify::Dispatcher;
use crm_core::notify::{
    DomainEvent, EventKind, RecordingNotifier, RecordingSink, StaticDirectory, TemplateName,
};
use crm_core::segment::Segment;
use crm_core::sla::{SlaMetric, SlaTarget};
use crm_core::{
    Channel, Crm, Customer, Interaction, InteractionKind, Lifecycle, ManualClock, Money, TenantId,
    UserId,
};
use crm_testkit::conformance::sales::sample_pipeline;
use crm_testkit::rules::segment_schema;
use crm_testkit::MemoryStore;

fn schema_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../crm-core/schemas/events")
}

fn file_of(kind: EventKind) -> PathBuf {
    schema_dir().join(format!("{}.v{}.json", kind.as_str(), kind.schema_version()))
}

fn pretty(value: &serde_json::Value) -> String {
    let mut text = serde_json::to_string_pretty(value).expect("a schema prints");
    text.push('\n');
    text
}

#[test]
fn schema_files_are_what_the_payload_types_generate() {
    let write = std::env::var("CRM_WRITE_SCHEMAS").as_deref() == Ok("1");
    let mut stale = Vec::new();
    for &kind in EventKind::ALL {
        let generated = pretty(&event_schema(kind));
        let path = file_of(kind);
        if write {
            std::fs::create_dir_all(schema_dir()).expect("schema folder");
            std::fs::write(&path, &generated).expect("write schema");
            continue;
        }
        match std::fs::read_to_string(&path) {
            Ok(stored) if stored == generated => {}
            Ok(_) => stale.push(format!(
                "{}: the payload changed but its schema version ({}) did not",
                kind.as_str(),
                kind.schema_version()
            )),
            Err(e) => stale.push(format!("{}: {e}", path.display())),
        }
    }
    assert!(
        stale.is_empty(),
        "event schemas out of date:\n{}\nIf only optional fields were added, regenerate with \
         CRM_WRITE_SCHEMAS=1 cargo test -p crm-testkit --test event_schemas; otherwise raise \
         the kind's EventKind::schema_version first.",
        stale.join("\n")
    );
    // Every file belongs to a kind at or below its current version: none is orphaned.
    for entry in std::fs::read_dir(schema_dir()).expect("schema folder") {
        let name = entry
            .expect("entry")
            .file_name()
            .to_string_lossy()
            .into_owned();
        let (kind, version) = name
            .strip_suffix(".json")
            .and_then(|n| n.rsplit_once(".v"))
            .unwrap_or_else(|| panic!("{name}: not KIND.vN.json"));
        let kind = EventKind::parse(kind).unwrap_or_else(|_| panic!("{name}: unknown kind"));
        let version: u32 = version.parse().expect("a version number");
        assert!(
            (1..=kind.schema_version()).contains(&version),
            "{name}: no such version"
        );
    }
}

/// Validates `event` as a receiver gets it against its kind's schema file.
fn check(
    schemas: &mut boon::Schemas,
    compiled: &mut HashMap<EventKind, boon::SchemaIndex>,
    event: &DomainEvent,
) {
    let index = *compiled.entry(event.kind).or_insert_with(|| {
        let path = file_of(event.kind);
        let text =
            std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let schema: serde_json::Value = serde_json::from_str(&text).expect("schema JSON");
        let mut compiler = boon::Compiler::new();
        // Formats (uuid, date-time, email...) are checked too, not only noted.
        compiler.enable_format_assertions();
        let url = format!("urn:test:{}", event.kind.as_str());
        compiler
            .add_resource(&url, schema)
            .expect("schema resource");
        compiler
            .compile(&url, schemas)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    });
    let body = serde_json::to_value(event).expect("event JSON");
    if let Err(e) = schemas.validate(&body, index) {
        panic!(
            "{} does not match its schema: {e:#}\n{body:#}",
            event.kind.as_str()
        );
    }
}

#[tokio::test]
async fn an_event_of_every_kind_matches_its_schema() {
    let t0 = Utc.with_ymd_and_hms(2026, 3, 2, 8, 0, 0).unwrap();
    let store = Arc::new(MemoryStore::new());
    let clock = Arc::new(ManualClock::new(t0));
    let crm = Crm::new(store.clone())
        .with_clock(clock.clone())
        .with_events(true);
    let tenant = TenantId::new();
    let t = crm.tenant(tenant);
    let (agent, lead) = (UserId::new(), UserId::new());

    // Customers: created, updated and owner changed, merged, erased.
    let ann = t
        .customers()
        .register(
            Customer::person("Ann Lee")
                .email("ann@example.com")
                .phone("+49 30 1234567")
                .tag("vip")
                .lifecycle(Lifecycle::Active)
                .build()
                .unwrap(),
        )
        .await
        .unwrap();
    let ann = t
        .customers()
        .change_owner(ann.id, Some(agent), ann.version, None, Some("key account"))
        .await
        .unwrap();
    let twin = t
        .customers()
        .register(
            Customer::person("Ann Lee")
                .email("ann.lee@example.com")
                .build()
                .unwrap(),
        )
        .await
        .unwrap();
    t.customers()
        .merge(ann.id, &[twin.id], &MergePolicy::default(), false)
        .await
        .unwrap();
    let gone = t
        .customers()
        .register(Customer::person("Bo Gone").build().unwrap())
        .await
        .unwrap();
    t.privacy().erase(gone.id, gone.version).await.unwrap();

    // An interaction with an amount.
    let purchase = Interaction::builder(ann.id, Channel::Web, InteractionKind::Purchase)
        .at(t0)
        .amount(Money::parse("99.90", "EUR").unwrap())
        .key("shop", "order-1")
        .build()
        .unwrap();
    t.interactions().log(purchase).await.unwrap();

    // Cases: opened, breached (a KPI rule), resolved.
    let draft = Case::open(
        ann.id,
        CaseKind::Complaint,
        "Broken",
        Channel::Email,
        Some(agent),
        t0,
    )
    .unwrap();
    let case = t.cases().open(draft).await.unwrap();
    let rule = KpiRule {
        key: TemplateName::parse("complaint-first-reply").unwrap(),
        name: "Answer complaints within 1 business hour".into(),
        metric: KpiMetric::Case(
            SlaTarget::new(SlaMetric::FirstReply, Duration::hours(1), 0.5).unwrap(),
        ),
        calendar: BusinessCalendar::new(
            chrono_tz::Europe::Berlin,
            Week::weekdays(&[Interval::parse("00:00", "23:59").unwrap()]),
        )
        .unwrap(),
        scope: KpiScope {
            kinds: vec![CaseKind::Complaint],
            ..KpiScope::default()
        },
        compliance_goal: 0.9,
        on_warning: vec![],
        on_breach: vec![KpiAction::NotifyTeamLead],
    };
    let engine = KpiEngine::new(vec![rule], t0).unwrap();
    let later = t0 + Duration::hours(3);
    clock.set(later);
    let report = t.kpis().evaluate(&engine, later).await.unwrap();
    assert_eq!(report.breaches, 1);
    let case = t.cases().get(case.id).await.unwrap();
    t.cases()
        .record_event(
            case.id,
            case.version,
            CaseEventKind::StatusChange {
                to: CaseStatus::Resolved,
                by: Some(lead),
            },
            vec![],
        )
        .await
        .unwrap();

    // Segments: entered, then left.
    let schema = segment_schema();
    let fixed = t
        .segments()
        .create(Segment::fixed("Hand-picked").unwrap(), &schema)
        .await
        .unwrap();
    t.segments()
        .change_static_members(fixed.id, vec![ann.id], vec![])
        .await
        .unwrap();
    t.segments()
        .change_static_members(fixed.id, vec![], vec![ann.id])
        .await
        .unwrap();

    // Deals: stage changed, won (with a line), lost.
    let sales = t.sales();
    let pipeline = sales.create_pipeline(sample_pipeline()).await.unwrap();
    let close = chrono::NaiveDate::from_ymd_opt(2026, 6, 30).unwrap();
    let deal = |name: &str| {
        crm_core::sales::Opportunity::new(
            name,
            ann.id,
            agent,
            &pipeline,
            Money::parse("1200", "EUR").unwrap(),
            close,
            later,
        )
        .unwrap()
    };
    let won = sales.open(deal("Big one")).await.unwrap();
    sales.win(won.id, won.version).await.unwrap();
    let lost = sales.open(deal("Small one")).await.unwrap();
    sales
        .lose(lost.id, lost.version, "No budget", None)
        .await
        .unwrap();

    // Everything the outbox holds, as a receiver gets it.
    let sink = Arc::new(RecordingSink::new());
    let dispatcher = Dispatcher::new(
        tenant,
        store.clone(),
        Arc::new(RecordingNotifier::new()),
        Arc::new(StaticDirectory::new()),
        clock.clone(),
    )
    .with_event_sink(sink.clone());
    let far = later + Duration::days(1);
    while dispatcher.run_once(far).await.unwrap().claimed > 0 {}
    let events = sink.events();

    let mut schemas = boon::Schemas::new();
    let mut compiled = HashMap::new();
    for event in &events {
        assert_eq!(event.schema_version, event.kind.schema_version());
        check(&mut schemas, &mut compiled, event);
    }
    let seen: std::collections::BTreeSet<&str> = events.iter().map(|e| e.kind.as_str()).collect();
    let all: std::collections::BTreeSet<&str> = EventKind::ALL.iter().map(|k| k.as_str()).collect();
    assert_eq!(seen, all, "one event of every kind");

    // And a schema refuses what breaks it: a payload without a required field.
    let mut broken = events
        .iter()
        .find(|e| e.kind == EventKind::CaseOpened)
        .unwrap()
        .clone();
    broken.data.as_object_mut().unwrap().remove("status");
    let body = serde_json::to_value(&broken).unwrap();
    let index = compiled[&EventKind::CaseOpened];
    assert!(
        schemas.validate(&body, index).is_err(),
        "a missing field is refused"
    );
}
