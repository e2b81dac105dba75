//! What a write stores besides its records: [`WriteOptions`].

use super::*;

/// What a write stores besides its records, in the same transaction: outbox messages
/// (notifications and domain events), and for customer writes audit entries and an
/// ownership transfer. One value instead of a growing list of parameters.
///
/// ```
/// use crm_core::ports::WriteOptions;
/// let options = WriteOptions::new().outbox(Vec::new());
/// assert!(options.check_messages_only().is_ok());
/// ```
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct WriteOptions {
    /// Audit entries to record (customer writes only).
    pub audit: Vec<AuditEntry>,
    /// An ownership transfer to record (`update_customer` only).
    pub ownership: Option<OwnershipChange>,
    /// Notifications and domain events caused by the change, stored as
    /// [`OutboxStore::enqueue`] stores them (repeated keys skipped).
    pub outbox: Vec<OutboxMessage>,
}

impl WriteOptions {
    /// Nothing besides the records.
    pub fn new() -> Self {
        WriteOptions::default()
    }

    /// With these outbox messages.
    pub fn outbox(mut self, messages: Vec<OutboxMessage>) -> Self {
        self.outbox = messages;
        self
    }

    /// With this audit entry too.
    pub fn audit(mut self, entry: AuditEntry) -> Self {
        self.audit.push(entry);
        self
    }

    /// With an ownership transfer, or without one.
    pub fn ownership(mut self, change: Option<OwnershipChange>) -> Self {
        self.ownership = change;
        self
    }

    /// Checks the options of a customer write before anything is written: every outbox
    /// message is valid (errors name `messages[i]`).
    pub fn check(&self) -> Result<()> {
        super::stored::check_messages(&self.outbox)
    }

    /// [`check`](Self::check)s the options and takes them apart: audit entries, the
    /// ownership transfer, outbox messages. For adapters' customer writes.
    #[allow(clippy::type_complexity)]
    pub fn into_parts(
        self,
    ) -> Result<(Vec<AuditEntry>, Option<OwnershipChange>, Vec<OutboxMessage>)> {
        self.check()?;
        Ok((self.audit, self.ownership, self.outbox))
    }

    /// [`check`](Self::check)s the options and takes them apart: audit entries and outbox
    /// messages; an ownership transfer is a validation error. For adapters' customer
    /// writes other than an update.
    pub fn into_audited(self) -> Result<(Vec<AuditEntry>, Vec<OutboxMessage>)> {
        self.refuse_ownership()?;
        self.check()?;
        Ok((self.audit, self.outbox))
    }

    /// [`check_messages_only`](Self::check_messages_only) and the outbox messages: for
    /// adapters' writes that store nothing else.
    pub fn into_outbox(self) -> Result<Vec<OutboxMessage>> {
        self.check_messages_only()?;
        Ok(self.outbox)
    }

    /// As [`check`](Self::check), for writes that store only outbox messages: audit
    /// entries or an ownership transfer are a validation error (on `options.audit`,
    /// `options.ownership`) rather than silently dropped.
    pub fn check_messages_only(&self) -> Result<()> {
        if !self.audit.is_empty() {
            return Err(crate::Error::validation(
                "options.audit",
                "this write records no audit entries",
            ));
        }
        self.refuse_ownership()?;
        self.check()
    }

    /// An ownership transfer is stored by `update_customer` only: elsewhere a validation
    /// error on `options.ownership`.
    fn refuse_ownership(&self) -> Result<()> {
        match self.ownership {
            Some(_) => Err(crate::Error::validation(
                "options.ownership",
                "only a customer update records an ownership transfer",
            )),
            None => Ok(()),
        }
    }
}
