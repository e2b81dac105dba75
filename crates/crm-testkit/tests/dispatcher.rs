//! The dispatcher's running loop on the reference store: a shutdown in the middle of a
//! batch finishes the message in hand and gives the rest back at once.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use crm_core::notify::{
    DispatchConfig, Dispatcher, Envelope, Notification, Notifier, OutboxStore, Recipient,
    RecordingNotifier, Shutdown, StaticDirectory,
};
use crm_core::{Crm, EmailAddress, ManualClock, Result, TenantId};
use crm_testkit::MemoryStore;

fn t0() -> DateTime<Utc> {
    DateTime::from_timestamp(1_767_000_000, 0).unwrap()
}

/// Records, and asks for a shutdown after its first delivery.
struct StopsAfterOne {
    inner: RecordingNotifier,
    shutdown: Shutdown,
}

#[async_trait]
impl Notifier for StopsAfterOne {
    async fn notify(&self, tenant: TenantId, envelope: &Envelope) -> Result<()> {
        self.inner.notify(tenant, envelope).await?;
        self.shutdown.trigger();
        Ok(())
    }
}

#[tokio::test]
async fn shutdown_mid_batch_releases_the_rest() {
    let store = Arc::new(MemoryStore::new());
    let clock = Arc::new(ManualClock::new(t0()));
    let crm = Crm::new(store.clone()).with_clock(clock.clone());
    let tenant = TenantId::new();
    let to = EmailAddress::parse("ops@example.com").unwrap();
    let notes = (0..5)
        .map(|i| {
            Notification::builder(Recipient::Email(to.clone()), "t", &format!("k{i}"))
                .build()
                .unwrap()
        })
        .collect();
    crm.tenant(tenant)
        .notifications()
        .enqueue(notes)
        .await
        .unwrap();
    let shutdown = Shutdown::new();
    let notifier = Arc::new(StopsAfterOne {
        inner: RecordingNotifier::new(),
        shutdown: shutdown.clone(),
    });
    let dispatcher = Dispatcher::new(
        tenant,
        store.clone(),
        notifier.clone(),
        Arc::new(StaticDirectory::new()),
        clock.clone(),
    )
    .with_config(DispatchConfig::default().with_poll_interval(Duration::from_millis(5)));
    let report = dispatcher.run(&shutdown, tokio::time::sleep).await;
    assert_eq!(
        (report.claimed, report.sent, report.released),
        (5, 1, 4),
        "{report:?}"
    );
    assert_eq!(notifier.inner.count(), 1);
    assert_eq!(store.pending_count(tenant).await.unwrap(), 4);
    // Released, not leased: another dispatcher takes them at once, before any lease lapses.
    let recorder = Arc::new(RecordingNotifier::new());
    let next = Dispatcher::new(
        tenant,
        store.clone(),
        recorder.clone(),
        Arc::new(StaticDirectory::new()),
        clock,
    );
    let report = next.run_once(t0()).await.unwrap();
    assert_eq!(report.sent, 4);
    assert_eq!(recorder.count(), 4);
    assert_eq!(store.pending_count(tenant).await.unwrap(), 0);
}
