//! Notifiers that need no server: one that records, one that writes a log.

use std::collections::{HashMap, VecDeque};
use std::io::Write;
use std::sync::Mutex;

use async_trait::async_trait;

use super::{Directory, Envelope, Notifier, StaffMember};
use crate::error::{Error, Result};
use crate::id::{TenantId, UserId};

/// Stores every message it is asked to send, for tests of hosts and rules. Failures can be
/// scripted: [`RecordingNotifier::fail_next`] makes the next deliveries fail (transiently
/// or permanently) without recording them.
#[derive(Debug, Default)]
pub struct RecordingNotifier {
    sent: Mutex<Vec<(TenantId, Envelope)>>,
    failures: Mutex<VecDeque<bool>>,
}

impl RecordingNotifier {
    /// A notifier that has sent nothing.
    pub fn new() -> Self {
        Self::default()
    }

    /// Makes the next `count` deliveries fail: permanently (as an SMTP 5xx reply would)
    /// or transiently (as a 4xx reply or a refused connection would).
    pub fn fail_next(&self, count: usize, permanent: bool) {
        let mut failures = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        failures.extend(std::iter::repeat_n(permanent, count));
    }

    /// Everything delivered so far, in order.
    pub fn sent(&self) -> Vec<(TenantId, Envelope)> {
        self.sent.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// How many messages were delivered.
    pub fn count(&self) -> usize {
        self.sent.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    /// Forgets what was delivered.
    pub fn clear(&self) {
        self.sent.lock().unwrap_or_else(|p| p.into_inner()).clear();
    }
}

#[async_trait]
impl Notifier for RecordingNotifier {
    async fn notify(&self, tenant: TenantId, envelope: &Envelope) -> Result<()> {
        let scripted = self
            .failures
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .pop_front();
        if let Some(permanent) = scripted {
            let source = format!(
                "scripted {} failure",
                if permanent { "permanent" } else { "transient" }
            );
            return Err(Error::notify(permanent, source));
        }
        self.sent
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push((tenant, envelope.clone()));
        Ok(())
    }
}

/// Writes each message as one JSON line (tenant and envelope) instead of sending it: for
/// development, and for hosts that have no mail server yet.
pub struct LogNotifier {
    out: Mutex<Box<dyn Write + Send>>,
}

impl std::fmt::Debug for LogNotifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogNotifier").finish_non_exhaustive()
    }
}

impl LogNotifier {
    /// Writes to standard error.
    pub fn stderr() -> Self {
        Self::to_writer(std::io::stderr())
    }

    /// Writes to `out` (a file, a buffer).
    pub fn to_writer(out: impl Write + Send + 'static) -> Self {
        LogNotifier {
            out: Mutex::new(Box::new(out)),
        }
    }
}

#[async_trait]
impl Notifier for LogNotifier {
    async fn notify(&self, tenant: TenantId, envelope: &Envelope) -> Result<()> {
        let line = serde_json::json!({ "tenant": tenant, "envelope": envelope });
        let mut out = self.out.lock().unwrap_or_else(|p| p.into_inner());
        writeln!(out, "{line}")
            .and_then(|()| out.flush())
            .map_err(|e| Error::notify(false, e))
    }
}

/// A [`Directory`] held in memory: for tests, examples, and hosts with a handful of staff.
#[derive(Debug, Default)]
pub struct StaticDirectory {
    members: Mutex<HashMap<(TenantId, UserId), StaffMember>>,
    orgs: Mutex<HashMap<TenantId, crate::access::Org>>,
}

impl StaticDirectory {
    /// An empty directory.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds (or replaces) a staff member of `tenant`.
    pub fn insert(&self, tenant: TenantId, member: StaffMember) {
        self.members
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert((tenant, member.id), member);
    }

    /// Sets (or replaces) the organisation of `tenant`.
    pub fn set_org(&self, tenant: TenantId, org: crate::access::Org) {
        self.orgs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(tenant, org);
    }
}

#[async_trait]
impl Directory for StaticDirectory {
    async fn staff_member(&self, tenant: TenantId, user: UserId) -> Result<Option<StaffMember>> {
        Ok(self
            .members
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&(tenant, user))
            .cloned())
    }

    async fn org(&self, tenant: TenantId) -> Result<crate::access::Org> {
        Ok(self
            .orgs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&tenant)
            .cloned()
            .unwrap_or_default())
    }
}
