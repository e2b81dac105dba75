//! The outbox of the in-memory store.

use super::*;

impl State {
    /// Validation for a bad message, Duplicate for one whose id the tenant already has.
    pub(super) fn check_outbox(&self, tenant: TenantId, messages: &[OutboxMessage]) -> Result<()> {
        check_messages(messages)?;
        let mut ids = BTreeSet::new();
        match messages
            .iter()
            .find(|m| self.outbox.contains_key(&(tenant, m.id)) || !ids.insert(m.id))
        {
            Some(m) => Err(Error::Duplicate {
                entity: "message",
                key: format!("id {}", m.id),
            }),
            None => Ok(()),
        }
    }

    /// Stores checked messages with the next sequence numbers, skipping known keys.
    pub(super) fn write_outbox(
        &mut self,
        tenant: TenantId,
        messages: Vec<OutboxMessage>,
    ) -> EnqueueReport {
        let mut report = EnqueueReport::default();
        for mut m in messages {
            if !self
                .outbox_keys
                .insert((tenant, m.notification.idempotency_key.clone()))
            {
                report.duplicates += 1;
                continue;
            }
            let seq = self.outbox_seq.entry(tenant).or_default();
            *seq += 1;
            m.seq = *seq;
            self.outbox.insert((tenant, m.id), (m, None));
            report.enqueued += 1;
        }
        report
    }

    /// Replaces a segment's members and, when `events_at` is given, stores the entered
    /// and left events.
    pub(super) fn replace_members_with_events(
        &mut self,
        tenant: TenantId,
        id: SegmentId,
        members: BTreeSet<CustomerId>,
        events_at: Option<DateTime<Utc>>,
    ) -> Result<MembershipChange> {
        let before = self.members.get(&(tenant, id)).cloned().unwrap_or_default();
        let preview = MembershipChange::between(&before, &members);
        let events = match events_at {
            Some(at) => membership_events(id, &preview, at)?,
            None => Vec::new(),
        };
        self.check_outbox(tenant, &events)?;
        let change = self.replace_members(tenant, id, members);
        self.write_outbox(tenant, events);
        Ok(change)
    }

    /// The message under a lease that is still `lease`: Conflict when another claim (or
    /// none) holds it now.
    pub(super) fn leased_message(
        &mut self,
        tenant: TenantId,
        id: MessageId,
        lease: Lease,
    ) -> Result<&mut OutboxMessage> {
        let (message, held) = self
            .outbox
            .get_mut(&(tenant, id))
            .ok_or_else(|| Error::not_found("message", id))?;
        if *held != Some(lease) || message.state != MessageState::Pending {
            return Err(lease_lost(id));
        }
        *held = None;
        Ok(message)
    }
}

#[async_trait]
impl OutboxStore for MemoryStore {
    async fn enqueue(
        &self,
        tenant: TenantId,
        messages: Vec<OutboxMessage>,
    ) -> Result<EnqueueReport> {
        let mut state = self.lock();
        state.check_outbox(tenant, &messages)?;
        Ok(state.write_outbox(tenant, messages))
    }

    async fn enqueue_groups(
        &self,
        tenant: TenantId,
        groups: Vec<Vec<OutboxMessage>>,
    ) -> Result<Vec<EnqueueReport>> {
        let mut state = self.lock();
        let all: Vec<OutboxMessage> = groups.iter().flatten().cloned().collect();
        state.check_outbox(tenant, &all)?;
        Ok(groups
            .into_iter()
            .map(|group| state.write_outbox(tenant, group))
            .collect())
    }

    async fn claim(
        &self,
        tenant: TenantId,
        now: DateTime<Utc>,
        lease: Lease,
        limit: u32,
    ) -> Result<Vec<Claimed>> {
        let mut state = self.lock();
        let mut due: Vec<_> = state
            .outbox
            .iter()
            .filter(|((t, _), (m, held))| {
                *t == tenant
                    && m.state == MessageState::Pending
                    && m.next_attempt_at <= now
                    && held.is_none_or(|l| l.until <= now)
                    && m.ordering_key.as_ref().is_none_or(|k| {
                        !state.outbox.iter().any(|((t2, _), (e, _))| {
                            *t2 == tenant
                                && e.state == MessageState::Pending
                                && e.ordering_key.as_ref() == Some(k)
                                && e.seq < m.seq
                        })
                    })
            })
            .map(|((_, id), (m, _))| {
                (
                    std::cmp::Reverse(m.notification.priority),
                    m.next_attempt_at,
                    m.seq,
                    *id,
                )
            })
            .collect();
        due.sort();
        due.truncate(limit as usize);
        Ok(due
            .into_iter()
            .map(|(_, _, _, id)| {
                let entry = state.outbox.get_mut(&(tenant, id)).expect("listed above");
                entry.1 = Some(lease);
                Claimed {
                    message: entry.0.clone(),
                    lease,
                }
            })
            .collect())
    }

    async fn mark_sent(
        &self,
        tenant: TenantId,
        id: MessageId,
        lease: Lease,
        at: DateTime<Utc>,
    ) -> Result<()> {
        let mut state = self.lock();
        let message = state.leased_message(tenant, id, lease)?;
        message.state = MessageState::Sent;
        message.sent_at = Some(at);
        Ok(())
    }

    async fn mark_failed(
        &self,
        tenant: TenantId,
        id: MessageId,
        lease: Lease,
        error: &str,
        retry_at: Option<DateTime<Utc>>,
    ) -> Result<()> {
        let mut state = self.lock();
        let message = state.leased_message(tenant, id, lease)?;
        message.attempts = message.attempts.saturating_add(1);
        message.last_error = Some(error.to_string());
        match retry_at {
            Some(at) => message.next_attempt_at = at,
            None => message.state = MessageState::Dead,
        }
        Ok(())
    }

    async fn release(&self, tenant: TenantId, id: MessageId, lease: Lease) -> Result<()> {
        self.lock().leased_message(tenant, id, lease).map(|_| ())
    }

    async fn outbox_message(&self, tenant: TenantId, id: MessageId) -> Result<OutboxMessage> {
        self.lock()
            .outbox
            .get(&(tenant, id))
            .map(|(m, _)| m.clone())
            .ok_or_else(|| Error::not_found("message", id))
    }

    async fn dead_letters(
        &self,
        tenant: TenantId,
        page: &PageRequest,
    ) -> Result<Page<OutboxMessage>> {
        page.validate()?;
        let after = page.after.as_ref().map(Cursor::as_message).transpose()?;
        let state = self.lock();
        let rows: Vec<OutboxMessage> = state
            .outbox
            .range((tenant, after.unwrap_or(MessageId::from_bytes([0; 16])))..)
            .take_while(|((t, _), _)| *t == tenant)
            .filter(|((_, id), (m, _))| m.state == MessageState::Dead && Some(*id) != after)
            .take(page.limit as usize + 1)
            .map(|(_, (m, _))| m.clone())
            .collect();
        Ok(Page::from_overfetch(rows, page.limit, |m| {
            Cursor::message(m.id)
        }))
    }

    async fn requeue(&self, tenant: TenantId, id: MessageId, now: DateTime<Utc>) -> Result<()> {
        let mut state = self.lock();
        let (message, held) = state
            .outbox
            .get_mut(&(tenant, id))
            .ok_or_else(|| Error::not_found("message", id))?;
        if message.state != MessageState::Dead {
            return Err(not_dead(id, message.state.as_str()));
        }
        message.state = MessageState::Pending;
        message.attempts = 0;
        message.next_attempt_at = now;
        *held = None;
        Ok(())
    }

    async fn pending_count(&self, tenant: TenantId) -> Result<u64> {
        Ok(self
            .lock()
            .outbox
            .iter()
            .filter(|((t, _), (m, _))| *t == tenant && m.state == MessageState::Pending)
            .count() as u64)
    }
}
