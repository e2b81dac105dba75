//! Notifications: what to send, the transactional outbox it waits in, and the ports that
//! resolve recipients and deliver.
//!
//! A state change and the notifications it causes are stored together; a
//! [`Dispatcher`] later claims due messages with a lease, resolves each recipient through
//! the [`Directory`] (staff) or the customer record (customers, with consent for marketing),
//! and hands an [`Envelope`] to the [`Notifier`]. A transient delivery failure is retried
//! with exponential backoff and jitter ([`RetryPolicy`]); a permanent one, or too many
//! attempts, makes the message a dead letter that can be listed and re-queued. A mail
//! server that is down therefore delays mail, it never loses it and never fails the
//! business operation that caused it.
//!
//! ```
//! use crm_core::notify::{Notification, Priority, Purpose, Recipient};
//! use crm_core::{Error, UserId};
//!
//! let owner = UserId::new();
//! let n = Notification::builder(Recipient::User(owner), "reminder_due", "reminder:42")
//!     .data(serde_json::json!({ "customer": "Ann Lee", "due": "today" }))
//!     .locale("zh-CN")
//!     .priority(Priority::High)
//!     .purpose(Purpose::Service)
//!     .build()?;
//! assert_eq!(n.template.as_str(), "reminder_due");
//!
//! // Template data must be a JSON object; the error names the field.
//! let bad = Notification::builder(Recipient::User(owner), "reminder_due", "k")
//!     .data(serde_json::json!([1, 2]))
//!     .build();
//! assert_eq!(bad.unwrap_err().field(), Some("data"));
//! # Ok::<(), Error>(())
//! ```

mod dispatch;
pub mod events;
mod notifiers;
pub mod payload;

use std::fmt;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::id::{CustomerId, MessageId, TeamId, TenantId, UserId};
use crate::page::{Page, PageRequest};
use crate::value::{EmailAddress, PhoneNumber};

pub use dispatch::{DispatchConfig, DispatchReport, Dispatcher, RetryPolicy, Shutdown};
pub use events::{DomainEvent, EntityRef, EventKind, EventSink, JsonLinesSink, RecordingSink};
pub use notifiers::{LogNotifier, RecordingNotifier, StaticDirectory};

/// Who a notification is for.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Recipient {
    /// A staff member, resolved through the [`Directory`].
    User(UserId),
    /// The team lead of a staff member (for escalations), resolved through the
    /// [`Directory`].
    TeamLeadOf(UserId),
    /// A customer, reached at their primary email address; marketing only with consent.
    Customer(CustomerId),
    /// A literal address.
    Email(EmailAddress),
    /// The host's [`EventSink`]: used by domain events.
    Subscribers,
}

/// How a notification travels.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryChannel {
    /// Email.
    #[default]
    Email,
    /// A text message.
    Sms,
    /// A chat or in-app message.
    Chat,
    /// A domain event for the host's [`EventSink`].
    Event,
}

impl DeliveryChannel {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryChannel::Email => "email",
            DeliveryChannel::Sms => "sms",
            DeliveryChannel::Chat => "chat",
            DeliveryChannel::Event => "event",
        }
    }

    /// Parses a stored name. Errors: validation on `channel`.
    pub fn parse(text: &str) -> Result<Self> {
        match text {
            "email" => Ok(DeliveryChannel::Email),
            "sms" => Ok(DeliveryChannel::Sms),
            "chat" => Ok(DeliveryChannel::Chat),
            "event" => Ok(DeliveryChannel::Event),
            other => Err(Error::validation(
                "channel",
                format!("unknown delivery channel {other:?}"),
            )),
        }
    }
}

/// How urgent a notification is; higher priorities are claimed first.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Priority {
    /// Digest material.
    Low,
    /// The default.
    #[default]
    Normal,
    /// Warnings and reminders.
    High,
    /// Breaches and escalations.
    Urgent,
}

impl Priority {
    /// A number that sorts like the priority (0 = low), as adapters store it.
    pub fn rank(self) -> i64 {
        self as i64
    }

    /// The priority of a stored rank. Errors: validation on `priority`.
    pub fn from_rank(rank: i64) -> Result<Self> {
        match rank {
            0 => Ok(Priority::Low),
            1 => Ok(Priority::Normal),
            2 => Ok(Priority::High),
            3 => Ok(Priority::Urgent),
            other => Err(Error::validation(
                "priority",
                format!("unknown priority rank {other}"),
            )),
        }
    }
}

/// Why a message is sent, which decides whether a customer's consent is needed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Purpose {
    /// About the recipient's own cases, orders, reminders: no marketing consent needed.
    #[default]
    Service,
    /// Campaigns and offers: a customer receives them only with consent for the channel.
    Marketing,
}

/// Checks a short identifier-like text: 1..=max characters from `allowed`.
fn check_token(text: &str, field: &str, max: usize, allowed: fn(char) -> bool) -> Result<()> {
    if text.is_empty() || text.chars().count() > max {
        return Err(Error::validation(
            field,
            format!("must be 1 to {max} characters"),
        ));
    }
    if let Some(bad) = text.chars().find(|c| !allowed(*c)) {
        return Err(Error::validation(
            field,
            format!("character {bad:?} is not allowed"),
        ));
    }
    Ok(())
}

macro_rules! token_type {
    ($(#[$doc:meta])* $name:ident, $field:literal, $max:literal, $allowed:expr) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// Checks and wraps the text. Errors: validation naming the field.
            pub fn parse(text: &str) -> Result<Self> {
                check_token(text, $field, $max, $allowed)?;
                Ok(Self(text.to_string()))
            }

            /// The text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = Error;
            fn try_from(text: String) -> Result<Self> {
                check_token(&text, $field, $max, $allowed)?;
                Ok(Self(text))
            }
        }

        impl From<$name> for String {
            fn from(value: $name) -> String {
                value.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{:?}", self.0)
            }
        }
    };
}

token_type!(
    /// The name of a message template (`reminder_due`, `kpi.breach`): ASCII lower-case
    /// letters, digits, `_`, `-` and `.`, at most 64 characters.
    TemplateName,
    "template",
    64,
    |c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '_' | '-' | '.')
);

token_type!(
    /// A language tag (`en`, `zh-CN`, `de-AT`): ASCII letters, digits and `-`, at most 35
    /// characters, as in BCP 47.
    Locale,
    "locale",
    35,
    |c| c.is_ascii_alphanumeric() || c == '-'
);

impl Locale {
    /// The language part (`zh` of `zh-CN`).
    pub fn language(&self) -> &str {
        self.0.split('-').next().unwrap_or(&self.0)
    }
}

/// The longest idempotency key accepted, in bytes.
pub const MAX_KEY_LEN: usize = 200;
/// The most bytes a notification's data may take as JSON.
pub const MAX_DATA_BYTES: usize = 256 * 1024;
/// The deepest nesting of arrays and objects in a notification's data (stored as JSON, it
/// must read back: JSON readers refuse deep nesting).
pub const MAX_DATA_DEPTH: usize = 32;

/// The nesting depth of a JSON value (a scalar is 0), walked without recursion.
fn json_depth(value: &serde_json::Value) -> usize {
    let mut deepest = 0;
    let mut stack = vec![(value, 0usize)];
    while let Some((v, depth)) = stack.pop() {
        deepest = deepest.max(depth);
        match v {
            serde_json::Value::Array(items) => stack.extend(items.iter().map(|i| (i, depth + 1))),
            serde_json::Value::Object(map) => stack.extend(map.values().map(|i| (i, depth + 1))),
            _ => {}
        }
    }
    deepest
}

/// A message to send: who, how, which template with what data, when and how urgently.
///
/// The `idempotency_key` identifies the message for good: enqueuing a second message with
/// the same key in the same tenant is skipped, and the email adapter derives the
/// Message-ID from it so receivers can drop repeats.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Notification {
    /// Who it is for.
    pub recipient: Recipient,
    /// How it travels.
    pub channel: DeliveryChannel,
    /// Which template renders it.
    pub template: TemplateName,
    /// The template's data: a JSON object.
    pub data: serde_json::Value,
    /// The language to render in; when absent, the recipient's own (from the directory).
    pub locale: Option<Locale>,
    /// How urgent.
    pub priority: Priority,
    /// Service or marketing (consent).
    pub purpose: Purpose,
    /// Identifies the message across retries and re-enqueues.
    pub idempotency_key: String,
    /// Not delivered before this instant.
    pub not_before: Option<DateTime<Utc>>,
}

impl Notification {
    /// Starts a notification to `recipient` rendered with `template`, identified by `key`.
    pub fn builder(recipient: Recipient, template: &str, key: &str) -> NotificationBuilder {
        NotificationBuilder {
            recipient,
            template: template.to_string(),
            key: key.to_string(),
            channel: DeliveryChannel::Email,
            data: serde_json::Value::Object(Default::default()),
            locale: None,
            priority: Priority::Normal,
            purpose: Purpose::Service,
            not_before: None,
        }
    }

    /// Checks the rules that span fields (a deserialised value may break them).
    pub fn validate(&self) -> Result<()> {
        if !self.data.is_object() {
            return Err(Error::validation("data", "must be a JSON object"));
        }
        // Depth first: serialising a deeper value would recurse that deep.
        let depth = json_depth(&self.data);
        if depth > MAX_DATA_DEPTH {
            return Err(Error::validation(
                "data",
                format!("nests {depth} levels deep, more than {MAX_DATA_DEPTH}"),
            ));
        }
        let size = serde_json::to_vec(&self.data).map_or(usize::MAX, |v| v.len());
        if size > MAX_DATA_BYTES {
            return Err(Error::validation(
                "data",
                format!("takes {size} bytes as JSON, more than {MAX_DATA_BYTES}"),
            ));
        }
        let key = &self.idempotency_key;
        if key.is_empty() || key.len() > MAX_KEY_LEN {
            return Err(Error::validation(
                "idempotency_key",
                format!("must be 1 to {MAX_KEY_LEN} bytes"),
            ));
        }
        if key.chars().any(char::is_control) {
            return Err(Error::validation(
                "idempotency_key",
                "control characters are not allowed",
            ));
        }
        Ok(())
    }
}

/// Builds a [`Notification`]; [`NotificationBuilder::build`] validates every field.
#[derive(Clone, Debug)]
pub struct NotificationBuilder {
    recipient: Recipient,
    template: String,
    key: String,
    channel: DeliveryChannel,
    data: serde_json::Value,
    locale: Option<String>,
    priority: Priority,
    purpose: Purpose,
    not_before: Option<DateTime<Utc>>,
}

impl NotificationBuilder {
    /// How it travels (default email).
    pub fn channel(mut self, channel: DeliveryChannel) -> Self {
        self.channel = channel;
        self
    }

    /// The template's data (a JSON object; default empty).
    pub fn data(mut self, data: serde_json::Value) -> Self {
        self.data = data;
        self
    }

    /// The language to render in.
    pub fn locale(mut self, locale: &str) -> Self {
        self.locale = Some(locale.to_string());
        self
    }

    /// How urgent (default normal).
    pub fn priority(mut self, priority: Priority) -> Self {
        self.priority = priority;
        self
    }

    /// Service or marketing (default service).
    pub fn purpose(mut self, purpose: Purpose) -> Self {
        self.purpose = purpose;
        self
    }

    /// Not delivered before `at`.
    pub fn not_before(mut self, at: DateTime<Utc>) -> Self {
        self.not_before = Some(at);
        self
    }

    /// The checked notification. Errors: validation naming the first bad field.
    pub fn build(self) -> Result<Notification> {
        let notification = Notification {
            recipient: self.recipient,
            channel: self.channel,
            template: TemplateName::parse(&self.template)?,
            data: self.data,
            locale: self.locale.as_deref().map(Locale::parse).transpose()?,
            priority: self.priority,
            purpose: self.purpose,
            idempotency_key: self.key,
            not_before: self.not_before,
        };
        notification.validate()?;
        Ok(notification)
    }
}

/// Where a message is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MessageState {
    /// Waiting for its next attempt (or claimed under a lease).
    Pending,
    /// Delivered.
    Sent,
    /// Given up on: a permanent failure or too many attempts. Can be re-queued.
    Dead,
}

impl MessageState {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            MessageState::Pending => "pending",
            MessageState::Sent => "sent",
            MessageState::Dead => "dead",
        }
    }

    /// Parses a stored name. Errors: validation on `state`.
    pub fn parse(text: &str) -> Result<Self> {
        match text {
            "pending" => Ok(MessageState::Pending),
            "sent" => Ok(MessageState::Sent),
            "dead" => Ok(MessageState::Dead),
            other => Err(Error::validation(
                "state",
                format!("unknown message state {other:?}"),
            )),
        }
    }
}

/// A notification (or a domain event) in the outbox, with its delivery bookkeeping.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OutboxMessage {
    /// The message's id.
    pub id: MessageId,
    /// Assigned by the store when the message is enqueued: increases per tenant in the
    /// order messages were stored (0 before that).
    pub seq: u64,
    /// Messages with the same key are delivered one at a time in `seq` order: a message
    /// is not claimed while an earlier one with its key is pending. Domain events use the
    /// entity; plain notifications have none.
    pub ordering_key: Option<String>,
    /// What to send.
    pub notification: Notification,
    /// Pending, sent or dead.
    pub state: MessageState,
    /// Failed delivery attempts so far.
    pub attempts: u32,
    /// When it may be claimed next.
    pub next_attempt_at: DateTime<Utc>,
    /// When it was enqueued.
    pub enqueued_at: DateTime<Utc>,
    /// The last delivery error, if any.
    pub last_error: Option<String>,
    /// When it was delivered.
    pub sent_at: Option<DateTime<Utc>>,
}

impl OutboxMessage {
    /// A new pending message, due at `not_before` or `now`, whichever is later.
    pub fn new(notification: Notification, now: DateTime<Utc>) -> Self {
        let due = notification.not_before.map_or(now, |at| at.max(now));
        OutboxMessage {
            id: MessageId::new(),
            seq: 0,
            ordering_key: None,
            notification,
            state: MessageState::Pending,
            attempts: 0,
            next_attempt_at: due,
            enqueued_at: now,
            last_error: None,
            sent_at: None,
        }
    }
}

/// The proof that a dispatcher holds a claimed message: only the holder of the current
/// lease can mark it sent, failed or released.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Lease {
    /// Random token of this claim.
    pub token: uuid::Uuid,
    /// The lease lapses at this instant; after it, another dispatcher may claim the message.
    pub until: DateTime<Utc>,
}

impl Lease {
    /// A fresh lease until `until`.
    pub fn new(until: DateTime<Utc>) -> Self {
        Lease {
            token: uuid::Uuid::new_v4(),
            until,
        }
    }
}

/// A message claimed by a dispatcher.
#[derive(Clone, Debug, PartialEq)]
pub struct Claimed {
    /// The message as it was when claimed.
    pub message: OutboxMessage,
    /// The lease held on it.
    pub lease: Lease,
}

/// What [`OutboxStore::enqueue`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnqueueReport {
    /// Messages stored.
    pub enqueued: usize,
    /// Messages skipped because the tenant already has their idempotency key (or it
    /// appeared earlier in the same call).
    pub duplicates: usize,
}

/// The transactional outbox: messages waiting for delivery, claimed under leases.
///
/// Messages are claimed in order of priority (highest first), then due time, then `seq`.
/// A message with an `ordering_key` is not claimed while an earlier message (lower `seq`)
/// with the same key is pending. Several dispatchers may claim at once: a message is
/// handed to at most one of them while its lease holds (PostgreSQL uses
/// `FOR UPDATE SKIP LOCKED`).
#[cfg_attr(any(test, feature = "mock"), mockall::automock)]
#[async_trait]
pub trait OutboxStore: Send + Sync {
    /// Stores new messages in one transaction, all or nothing, assigning each its `seq`;
    /// messages whose idempotency key the tenant already has are skipped and counted.
    /// Storage write methods that take an `outbox` argument store it the same way, in the
    /// transaction of their change.
    async fn enqueue(
        &self,
        _tenant: TenantId,
        _messages: Vec<OutboxMessage>,
    ) -> Result<EnqueueReport> {
        Err(crate::ports::unsupported::<Self>("enqueue"))
    }

    /// Stores groups of messages in one transaction, all or nothing, with one report per
    /// group, in order: each group is stored as [`enqueue`](Self::enqueue) would store it
    /// after the groups before it (a key an earlier group stored is a duplicate in a later
    /// one). The default checks every message first, then enqueues each group in a
    /// transaction of its own (so a storage error part-way keeps the groups before it).
    async fn enqueue_groups(
        &self,
        tenant: TenantId,
        groups: Vec<Vec<OutboxMessage>>,
    ) -> Result<Vec<EnqueueReport>> {
        for group in &groups {
            crate::ports::stored::check_messages(group)?;
        }
        let mut reports = Vec::with_capacity(groups.len());
        for group in groups {
            reports.push(self.enqueue(tenant, group).await?);
        }
        Ok(reports)
    }

    /// Claims up to `limit` pending messages due at `now` whose lease (if any) has lapsed,
    /// under `lease`, in claim order.
    async fn claim(
        &self,
        _tenant: TenantId,
        _now: DateTime<Utc>,
        _lease: Lease,
        _limit: u32,
    ) -> Result<Vec<Claimed>> {
        Err(crate::ports::unsupported::<Self>("claim"))
    }

    /// Marks a claimed message delivered.
    ///
    /// Errors: [`NotFound`](crate::Error::NotFound); [`LeaseLost`](crate::Error::LeaseLost)
    /// if `lease` is no longer the message's lease (it lapsed and was claimed again).
    async fn mark_sent(
        &self,
        _tenant: TenantId,
        _id: MessageId,
        _lease: Lease,
        _at: DateTime<Utc>,
    ) -> Result<()> {
        Err(crate::ports::unsupported::<Self>("mark_sent"))
    }

    /// Records a failed attempt: counts it, keeps `error`, and either schedules the next
    /// attempt at `retry_at` or, when `retry_at` is `None`, makes the message a dead letter.
    /// Errors as [`OutboxStore::mark_sent`].
    async fn mark_failed(
        &self,
        _tenant: TenantId,
        _id: MessageId,
        _lease: Lease,
        _error: &str,
        _retry_at: Option<DateTime<Utc>>,
    ) -> Result<()> {
        Err(crate::ports::unsupported::<Self>("mark_failed"))
    }

    /// Gives a claimed message back without counting an attempt (a dispatcher shutting
    /// down): it can be claimed again at once. Errors as [`OutboxStore::mark_sent`].
    async fn release(&self, _tenant: TenantId, _id: MessageId, _lease: Lease) -> Result<()> {
        Err(crate::ports::unsupported::<Self>("release"))
    }

    /// A message by id. Errors: [`NotFound`](crate::Error::NotFound).
    async fn outbox_message(&self, _tenant: TenantId, _id: MessageId) -> Result<OutboxMessage> {
        Err(crate::ports::unsupported::<Self>("outbox_message"))
    }

    /// Dead letters, oldest first (by id), one page at a time.
    async fn dead_letters(
        &self,
        _tenant: TenantId,
        _page: &PageRequest,
    ) -> Result<Page<OutboxMessage>> {
        Err(crate::ports::unsupported::<Self>("dead_letters"))
    }

    /// Puts a dead letter back in the queue, due at `now`, with its attempts reset.
    /// Errors: [`NotFound`](crate::Error::NotFound); validation on `state` if the message
    /// is not dead.
    async fn requeue(&self, _tenant: TenantId, _id: MessageId, _now: DateTime<Utc>) -> Result<()> {
        Err(crate::ports::unsupported::<Self>("requeue"))
    }

    /// How many messages are pending (due or not, claimed or not).
    async fn pending_count(&self, _tenant: TenantId) -> Result<u64> {
        Err(crate::ports::unsupported::<Self>("pending_count"))
    }
}

/// A staff member as the host's directory knows them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StaffMember {
    /// The user.
    pub id: UserId,
    /// Display name.
    pub name: String,
    /// Where email reaches them.
    pub email: EmailAddress,
    /// Their language, if known.
    pub locale: Option<Locale>,
    /// Their team.
    pub team: Option<TeamId>,
    /// Who leads their team (escalations go there).
    pub team_lead: Option<UserId>,
}

/// The host's staff directory (an ERP's user table, LDAP, an identity provider).
#[cfg_attr(any(test, feature = "mock"), mockall::automock)]
#[async_trait]
pub trait Directory: Send + Sync {
    /// The staff member, or `None` if the tenant has no such user.
    async fn staff_member(&self, tenant: TenantId, user: UserId) -> Result<Option<StaffMember>>;

    /// The tenant's organisation: units, and users with their unit and manager (for record
    /// visibility, see [`crate::access`]). The default is an empty organisation, in which
    /// unit and subordinate scopes reach only a user's own records.
    async fn org(&self, _tenant: TenantId) -> Result<crate::access::Org> {
        Ok(crate::access::Org::new())
    }
}

/// A recipient resolved to an address.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Addressee {
    /// Display name, if known.
    pub name: Option<String>,
    /// Email address, if the recipient has one.
    pub email: Option<EmailAddress>,
    /// Phone number (E.164), if the recipient has one.
    pub phone: Option<PhoneNumber>,
    /// Their language, if known.
    pub locale: Option<Locale>,
}

/// One message ready for a [`Notifier`]: the stored notification and the resolved address.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Envelope {
    /// The outbox message's id.
    pub message_id: MessageId,
    /// What to send.
    pub notification: Notification,
    /// To whom.
    pub to: Addressee,
}

impl Envelope {
    /// The locale to render in: the notification's, else the addressee's.
    pub fn locale(&self) -> Option<&Locale> {
        self.notification
            .locale
            .as_ref()
            .or(self.to.locale.as_ref())
    }
}

/// Delivers messages (email, chat, SMS...).
///
/// Errors: [`Error::Notify`], with `permanent` set when retrying
/// cannot help (an SMTP 5xx reply, a template that does not exist) and clear for transient
/// failures (a 4xx reply, a refused connection, a timeout), which are retried later.
#[cfg_attr(any(test, feature = "mock"), mockall::automock)]
#[async_trait]
pub trait Notifier: Send + Sync {
    /// Delivers one message.
    async fn notify(&self, tenant: TenantId, envelope: &Envelope) -> Result<()>;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_data(data: serde_json::Value) -> Result<Notification> {
        Notification::builder(
            Recipient::Email(crate::EmailAddress::parse("a@example.com").unwrap()),
            "hello",
            "k1",
        )
        .data(data)
        .build()
    }

    #[test]
    fn data_is_bounded_in_size_and_depth() {
        let big = "x".repeat(MAX_DATA_BYTES);
        let e = with_data(serde_json::json!({ "body": big })).unwrap_err();
        assert_eq!(e.field(), Some("data"));
        let mut deep = serde_json::json!("leaf");
        for _ in 0..MAX_DATA_DEPTH {
            deep = serde_json::json!([deep]);
        }
        let e = with_data(serde_json::json!({ "deep": deep })).unwrap_err();
        assert!(e.to_string().contains("levels"), "{e}");
        let mut ok = serde_json::json!("leaf");
        for _ in 0..MAX_DATA_DEPTH - 1 {
            ok = serde_json::json!([ok]);
        }
        let n = with_data(serde_json::json!({ "deep": ok })).unwrap();
        let json = serde_json::to_string(&n).unwrap();
        assert_eq!(serde_json::from_str::<Notification>(&json).unwrap(), n);
    }
}
