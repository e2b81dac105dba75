//! The dispatcher: claims due messages, resolves recipients, delivers, records the outcome.

use std::future::Future;
use std::ops::AddAssign;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};

use super::{
    Addressee, Claimed, DeliveryChannel, Directory, DomainEvent, Envelope, EventSink, Lease,
    Notifier, OutboxMessage, OutboxStore, Purpose, Recipient,
};
use crate::clock::Clock;
use crate::error::{Error, Result};
use crate::id::TenantId;
use crate::ports::CustomerStore;

/// When to try again after a failed delivery: exponential backoff with jitter, and a
/// maximum number of attempts after which the message becomes a dead letter.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct RetryPolicy {
    /// Delay after the first failure.
    pub base: Duration,
    /// No delay is longer than this.
    pub max_delay: Duration,
    /// After this many failed attempts the message is dead.
    pub max_attempts: u32,
    /// Fraction of each delay that is random, in `0.0..=1.0`: a delay `d` becomes a value
    /// in `d * (1 - jitter) ..= d`, so dispatchers that failed together retry apart.
    pub jitter: f64,
}

impl Default for RetryPolicy {
    /// 30 s, doubling up to 6 h, 10 attempts (about 17 hours in all), half jitter.
    fn default() -> Self {
        RetryPolicy {
            base: Duration::from_secs(30),
            max_delay: Duration::from_secs(6 * 3600),
            max_attempts: 10,
            jitter: 0.5,
        }
    }
}

impl RetryPolicy {
    /// The delay after failed attempt number `attempt` (1 for the first failure), with
    /// `random` in `0.0..1.0` choosing the jitter.
    pub fn delay(&self, attempt: u32, random: f64) -> Duration {
        let exponent = attempt.saturating_sub(1).min(60) as i32;
        let full = Duration::try_from_secs_f64(self.base.as_secs_f64() * 2f64.powi(exponent))
            .unwrap_or(self.max_delay)
            .min(self.max_delay);
        let jitter = self.jitter.clamp(0.0, 1.0) * random.clamp(0.0, 1.0);
        full.mul_f64(1.0 - jitter)
    }

    /// When to try again after `attempts` failed attempts in all, or `None` when the
    /// message has had its last attempt.
    pub fn next_attempt(
        &self,
        attempts: u32,
        now: DateTime<Utc>,
        random: f64,
    ) -> Option<DateTime<Utc>> {
        if attempts >= self.max_attempts {
            return None;
        }
        let delay = TimeDelta::from_std(self.delay(attempts, random)).unwrap_or(TimeDelta::MAX);
        Some(
            now.checked_add_signed(delay)
                .unwrap_or(DateTime::<Utc>::MAX_UTC),
        )
    }
}

/// How a [`Dispatcher`] works.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct DispatchConfig {
    /// Messages claimed at a time.
    pub batch_size: u32,
    /// How long a claim holds. Must comfortably exceed the time to deliver a batch: after
    /// it, another dispatcher may claim the same messages.
    pub lease: Duration,
    /// Retries and dead letters.
    pub retry: RetryPolicy,
    /// How long [`Dispatcher::run`] waits when nothing was due.
    pub poll_interval: Duration,
}

impl Default for DispatchConfig {
    /// Batches of 100, 5-minute leases, the default retry policy, polling every second.
    fn default() -> Self {
        DispatchConfig {
            batch_size: 100,
            lease: Duration::from_secs(300),
            retry: RetryPolicy::default(),
            poll_interval: Duration::from_secs(1),
        }
    }
}

impl DispatchConfig {
    /// Sets the batch size.
    pub fn with_batch_size(mut self, batch_size: u32) -> Self {
        self.batch_size = batch_size.max(1);
        self
    }

    /// Sets the lease duration.
    pub fn with_lease(mut self, lease: Duration) -> Self {
        self.lease = lease;
        self
    }

    /// Sets the retry policy.
    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// Sets the idle polling interval.
    pub fn with_poll_interval(mut self, poll_interval: Duration) -> Self {
        self.poll_interval = poll_interval;
        self
    }
}

/// What one or more dispatch rounds did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DispatchReport {
    /// Messages claimed.
    pub claimed: usize,
    /// Delivered and marked sent.
    pub sent: usize,
    /// Failed transiently and scheduled again.
    pub retried: usize,
    /// Made dead letters (permanent failure, unreachable recipient, or last attempt).
    pub dead: usize,
    /// Given back unsent because of a shutdown.
    pub released: usize,
    /// Whose lease lapsed before the outcome was recorded (another dispatcher has them).
    pub lost: usize,
}

impl AddAssign for DispatchReport {
    fn add_assign(&mut self, other: Self) {
        self.claimed += other.claimed;
        self.sent += other.sent;
        self.retried += other.retried;
        self.dead += other.dead;
        self.released += other.released;
        self.lost += other.lost;
    }
}

/// Asks a running [`Dispatcher`] to stop: it finishes the message in hand, gives the rest
/// of its claimed batch back, and returns. Clones share the signal.
#[derive(Clone, Debug, Default)]
pub struct Shutdown(Arc<AtomicBool>);

impl Shutdown {
    /// A signal not yet triggered.
    pub fn new() -> Self {
        Self::default()
    }

    /// Triggers it.
    pub fn trigger(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    /// Whether it was triggered.
    pub fn is_triggered(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// Delivers a tenant's outbox through a [`Notifier`].
///
/// Run [`Dispatcher::run_once`] from a scheduler of your own, or [`Dispatcher::run`] as a
/// long-running task. Several dispatchers may run against one store at once: leases keep
/// each message with one of them at a time. Delivery is at least once: a dispatcher that
/// dies after the server accepted a message but before recording it leaves the message to
/// be delivered again when its lease lapses, under the same idempotency key.
pub struct Dispatcher<S: ?Sized> {
    tenant: TenantId,
    store: Arc<S>,
    notifier: Arc<dyn Notifier>,
    directory: Arc<dyn Directory>,
    clock: Arc<dyn Clock>,
    config: DispatchConfig,
    events: Option<Arc<dyn EventSink>>,
}

impl<S: ?Sized> std::fmt::Debug for Dispatcher<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dispatcher")
            .field("tenant", &self.tenant)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// Why a message could not be delivered, and whether trying again can help.
struct Failure {
    permanent: bool,
    reason: String,
}

impl Failure {
    fn permanent(reason: impl Into<String>) -> Self {
        Failure {
            permanent: true,
            reason: reason.into(),
        }
    }
}

impl From<Error> for Failure {
    fn from(error: Error) -> Self {
        let mut reason = error.to_string();
        let mut source = std::error::Error::source(&error);
        while let Some(cause) = source {
            // Many errors repeat their source in their own message: keep each text once.
            let text = cause.to_string();
            if !reason.contains(&text) {
                reason.push_str(": ");
                reason.push_str(&text);
            }
            source = cause.source();
        }
        Failure {
            permanent: error.is_permanent(),
            reason,
        }
    }
}

impl<S> Dispatcher<S>
where
    S: OutboxStore + CustomerStore + ?Sized,
{
    /// A dispatcher for `tenant`'s outbox in `store`, with the default configuration.
    pub fn new(
        tenant: TenantId,
        store: Arc<S>,
        notifier: Arc<dyn Notifier>,
        directory: Arc<dyn Directory>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Dispatcher {
            tenant,
            store,
            notifier,
            directory,
            clock,
            config: DispatchConfig::default(),
            events: None,
        }
    }

    /// Delivers domain events (messages on [`DeliveryChannel::Event`]) to `sink`. Without
    /// a sink, an event is a dead letter ("no event sink"), to be re-queued once one is
    /// configured: only enable events in [`Crm`](crate::Crm) when a dispatcher has a sink.
    pub fn with_event_sink(mut self, sink: Arc<dyn EventSink>) -> Self {
        self.events = Some(sink);
        self
    }

    /// Replaces the configuration.
    pub fn with_config(mut self, config: DispatchConfig) -> Self {
        self.config = config;
        self
    }

    /// The configuration.
    pub fn config(&self) -> &DispatchConfig {
        &self.config
    }

    /// Claims one batch due at `now`, delivers it, and records each outcome.
    ///
    /// Errors: storage errors from claiming or recording (a message whose outcome could
    /// not be recorded is delivered again when its lease lapses).
    pub async fn run_once(&self, now: DateTime<Utc>) -> Result<DispatchReport> {
        self.round(now, None).await
    }

    /// Runs until `shutdown` is triggered: a round whenever messages are due, otherwise a
    /// wait of `poll_interval` through `sleep` (for example `tokio::time::sleep`), so the
    /// core needs no runtime of its own. A failing round is logged and retried after the
    /// wait. On shutdown the message in hand is finished and the rest of the batch is
    /// released for other dispatchers; the wait in progress, if any, is not cut short.
    pub async fn run<F, Fut>(&self, shutdown: &Shutdown, mut sleep: F) -> DispatchReport
    where
        F: FnMut(Duration) -> Fut,
        Fut: Future<Output = ()>,
    {
        let mut total = DispatchReport::default();
        while !shutdown.is_triggered() {
            match self.round(self.clock.now(), Some(shutdown)).await {
                Ok(report) => {
                    total += report;
                    if report.claimed > 0 {
                        continue;
                    }
                }
                Err(error) => {
                    tracing::warn!(tenant = %self.tenant, %error, "dispatch round failed");
                }
            }
            if !shutdown.is_triggered() {
                sleep(self.config.poll_interval).await;
            }
        }
        total
    }

    async fn round(
        &self,
        now: DateTime<Utc>,
        shutdown: Option<&Shutdown>,
    ) -> Result<DispatchReport> {
        let lease_len = TimeDelta::from_std(self.config.lease)
            .map_err(|_| Error::validation("lease", "too long"))?;
        let lease = Lease::new(now + lease_len);
        let batch = self
            .store
            .claim(self.tenant, now, lease, self.config.batch_size.max(1))
            .await?;
        let mut report = DispatchReport {
            claimed: batch.len(),
            ..DispatchReport::default()
        };
        let mut rest = batch.into_iter();
        for claimed in rest.by_ref() {
            if shutdown.is_some_and(Shutdown::is_triggered) {
                self.give_back(&claimed, &mut report).await?;
                break;
            }
            self.deliver(claimed, now, &mut report).await?;
        }
        for claimed in rest {
            self.give_back(&claimed, &mut report).await?;
        }
        Ok(report)
    }

    async fn give_back(&self, claimed: &Claimed, report: &mut DispatchReport) -> Result<()> {
        match self
            .store
            .release(self.tenant, claimed.message.id, claimed.lease)
            .await
        {
            Ok(()) => report.released += 1,
            Err(Error::LeaseLost { .. }) => report.lost += 1,
            Err(other) => return Err(other),
        }
        Ok(())
    }

    async fn deliver(
        &self,
        claimed: Claimed,
        now: DateTime<Utc>,
        report: &mut DispatchReport,
    ) -> Result<()> {
        let Claimed { message, lease } = claimed;
        let id = message.id;
        let outcome = if message.notification.channel == DeliveryChannel::Event {
            self.publish(&message).await
        } else {
            self.send(&message).await
        };
        let recorded = match outcome {
            Ok(()) => {
                let at = self.clock.now().max(now);
                let result = self.store.mark_sent(self.tenant, id, lease, at).await;
                if result.is_ok() {
                    report.sent += 1;
                }
                result
            }
            Err(failure) => {
                let attempts = message.attempts.saturating_add(1);
                let retry_at = if failure.permanent {
                    None
                } else {
                    self.config
                        .retry
                        .next_attempt(attempts, now, random_fraction())
                };
                tracing::info!(
                    tenant = %self.tenant, message = %id, attempts,
                    permanent = failure.permanent, reason = %failure.reason,
                    "delivery failed"
                );
                let result = self
                    .store
                    .mark_failed(self.tenant, id, lease, &failure.reason, retry_at)
                    .await;
                if result.is_ok() {
                    if retry_at.is_some() {
                        report.retried += 1;
                    } else {
                        report.dead += 1;
                    }
                }
                result
            }
        };
        match recorded {
            Ok(()) => Ok(()),
            Err(Error::LeaseLost { .. }) => {
                report.lost += 1;
                Ok(())
            }
            Err(other) => Err(other),
        }
    }

    /// Hands a domain event to the sink.
    async fn publish(&self, message: &OutboxMessage) -> Result<(), Failure> {
        let sink = self
            .events
            .as_ref()
            .ok_or_else(|| Failure::permanent("no event sink configured"))?;
        let event = DomainEvent::from_message(self.tenant, message)
            .map_err(|e| Failure::permanent(format!("not a readable event: {e}")))?;
        sink.deliver(&event).await.map_err(Failure::from)
    }

    /// Resolves the recipient and hands the message to the notifier.
    async fn send(&self, message: &OutboxMessage) -> Result<(), Failure> {
        let to = self.resolve(&message.notification).await?;
        let envelope = Envelope {
            message_id: message.id,
            notification: message.notification.clone(),
            to,
        };
        self.notifier
            .notify(self.tenant, &envelope)
            .await
            .map_err(Failure::from)
    }

    /// The address a recipient is reached at, or why it cannot be reached.
    async fn resolve(&self, notification: &super::Notification) -> Result<Addressee, Failure> {
        let staff = |member: super::StaffMember| Addressee {
            name: Some(member.name),
            email: Some(member.email),
            phone: None,
            locale: member.locale,
        };
        match &notification.recipient {
            Recipient::Email(email) => Ok(Addressee {
                name: None,
                email: Some(email.clone()),
                phone: None,
                locale: None,
            }),
            Recipient::Subscribers => Err(Failure::permanent(
                "recipient: subscribers receive events only",
            )),
            Recipient::User(user) => match self.directory.staff_member(self.tenant, *user).await? {
                Some(member) => Ok(staff(member)),
                None => Err(Failure::permanent(format!(
                    "recipient: unknown user {user}"
                ))),
            },
            Recipient::TeamLeadOf(user) => {
                let member = self
                    .directory
                    .staff_member(self.tenant, *user)
                    .await?
                    .ok_or_else(|| Failure::permanent(format!("recipient: unknown user {user}")))?;
                let lead = member.team_lead.ok_or_else(|| {
                    Failure::permanent(format!("recipient: user {user} has no team lead"))
                })?;
                match self.directory.staff_member(self.tenant, lead).await? {
                    Some(lead) => Ok(staff(lead)),
                    None => Err(Failure::permanent(format!(
                        "recipient: unknown team lead {lead}"
                    ))),
                }
            }
            Recipient::Customer(id) => {
                let customer = match self.store.get_customer(self.tenant, *id).await {
                    Ok(customer) => customer,
                    Err(Error::NotFound { .. }) => {
                        return Err(Failure::permanent(format!(
                            "recipient: customer {id} not found"
                        )))
                    }
                    Err(other) => return Err(other.into()),
                };
                if notification.purpose == Purpose::Marketing {
                    let consented = match notification.channel {
                        DeliveryChannel::Email => customer.consent.email,
                        DeliveryChannel::Sms => customer.consent.sms,
                        DeliveryChannel::Chat | DeliveryChannel::Event => false,
                    };
                    if !consented {
                        return Err(Failure::permanent(format!(
                            "recipient: customer {id} has not consented to marketing by {}",
                            notification.channel.as_str()
                        )));
                    }
                }
                Ok(Addressee {
                    name: Some(customer.name.as_str().to_string()),
                    email: customer.primary_email().cloned(),
                    phone: customer.primary_phone().cloned(),
                    locale: None,
                })
            }
        }
    }
}

/// A number in `0.0..1.0` from the operating system's randomness (through UUIDv4).
fn random_fraction() -> f64 {
    let bits = uuid::Uuid::new_v4().as_u128() >> 75; // 53 random bits
    bits as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(jitter: f64) -> RetryPolicy {
        RetryPolicy {
            base: Duration::from_secs(30),
            max_delay: Duration::from_secs(600),
            max_attempts: 4,
            jitter,
        }
    }

    #[test]
    fn delays_double_up_to_the_cap() {
        let p = policy(0.0);
        let secs: Vec<u64> = (1..=7).map(|a| p.delay(a, 0.7).as_secs()).collect();
        assert_eq!(secs, [30, 60, 120, 240, 480, 600, 600]);
        assert_eq!(
            p.delay(u32::MAX, 0.5),
            Duration::from_secs(600),
            "no overflow"
        );
    }

    #[test]
    fn jitter_stays_within_its_fraction() {
        let p = policy(0.5);
        assert_eq!(p.delay(2, 0.0), Duration::from_secs(60));
        assert_eq!(p.delay(2, 1.0), Duration::from_secs(30));
        for i in 0..100 {
            let r = f64::from(i) / 100.0;
            let d = p.delay(3, r).as_secs_f64();
            assert!((60.0..=120.0).contains(&d), "{d}");
        }
        let r = random_fraction();
        assert!((0.0..1.0).contains(&r));
    }

    #[test]
    fn the_last_attempt_has_no_next() {
        let p = policy(0.0);
        let now = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        assert_eq!(
            p.next_attempt(1, now, 0.0),
            Some(now + TimeDelta::seconds(30))
        );
        assert_eq!(
            p.next_attempt(3, now, 0.0),
            Some(now + TimeDelta::seconds(120))
        );
        assert_eq!(p.next_attempt(4, now, 0.0), None);
        let forever = RetryPolicy {
            max_delay: Duration::MAX,
            max_attempts: u32::MAX,
            ..p
        };
        assert!(
            forever.next_attempt(60, now, 0.0).is_some(),
            "saturates, no panic"
        );
    }
}
