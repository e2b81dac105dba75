//! Due instants in memory: an entry's mark is a hash of the versions its instant depends
//! on (and of the kind's reset count and, for follow-ups and deals, of how many
//! interactions the customers have), so any change of those records, however it was
//! written, makes the entry changed, as the SQL adapters' triggers do.

use std::collections::hash_map::DefaultHasher;
use std::collections::{BTreeMap, HashMap};
use std::hash::{Hash, Hasher};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use crm_core::schedule::{DueEntry, DueKind, Reschedule, CHANGED};
use crm_core::{Cursor, Page, PageRequest, Result, ScheduleStore, TenantId};
use uuid::Uuid;

use super::{MemoryStore, State};

/// An entry's instant (`None`: nothing pending) and the mark it was computed at.
type Stored = (Option<DateTime<Utc>>, i64);

/// The schedule of every tenant.
#[derive(Default)]
pub(super) struct ScheduleState {
    entries: HashMap<(TenantId, DueKind, Uuid), Stored>,
    basis: HashMap<(TenantId, DueKind), String>,
    resets: HashMap<(TenantId, DueKind), u64>,
    /// The job runner's leases: holder and until when.
    leases: HashMap<(TenantId, String), (Uuid, DateTime<Utc>)>,
}

fn stamp(parts: impl Hash) -> i64 {
    let mut h = DefaultHasher::new();
    parts.hash(&mut h);
    i64::from_ne_bytes(h.finish().to_ne_bytes())
}

/// The current mark of every record of `kind` that has (or would get) an entry.
fn marks(s: &State, tenant: TenantId, kind: DueKind) -> BTreeMap<Uuid, i64> {
    let reset = s.schedule.resets.get(&(tenant, kind)).copied().unwrap_or(0);
    let customer_version = |id| s.customers.get(&(tenant, id)).map(|c| c.version);
    let has_entry = |id: Uuid| s.schedule.entries.contains_key(&(tenant, kind, id));
    // Contacts: how many interactions handled by staff the customer has (any of them may
    // start a new gap).
    let contacts = |id| {
        s.timelines.get(&(tenant, id)).map_or(0, |t| {
            t.iter()
                .filter(|(_, i)| {
                    s.interactions
                        .get(&(tenant, *i))
                        .is_some_and(|i| i.handled_by.is_some())
                })
                .count()
        })
    };
    let mut out = BTreeMap::new();
    match kind {
        DueKind::Case => {
            for ((t, id), case) in &s.cases {
                if *t == tenant {
                    let parts = (reset, case.version, customer_version(case.customer));
                    out.insert(id.as_uuid(), stamp(parts));
                }
            }
        }
        DueKind::FollowUp | DueKind::Pool => {
            let mut cases: HashMap<_, Vec<(Uuid, u64)>> = HashMap::new();
            if kind == DueKind::Pool {
                for ((t, id), case) in &s.cases {
                    if *t == tenant {
                        cases
                            .entry(case.customer)
                            .or_default()
                            .push((id.as_uuid(), case.version));
                    }
                }
            }
            for ((t, id), c) in &s.customers {
                if *t == tenant && (c.owner.is_some() || has_entry(id.as_uuid())) {
                    let touched = (kind == DueKind::FollowUp).then(|| contacts(*id));
                    let parts = (reset, c.version, cases.get(id), touched);
                    out.insert(id.as_uuid(), stamp(parts));
                }
            }
        }
        DueKind::Deal => {
            for deal in s.sales.deals_of(tenant) {
                let touched: Vec<usize> = std::iter::once(deal.account)
                    .chain(deal.contacts.iter().map(|c| c.customer))
                    .map(contacts)
                    .collect();
                let parts = (reset, deal.version, customer_version(deal.account), touched);
                out.insert(deal.id.as_uuid(), stamp(parts));
            }
        }
    }
    out
}

#[async_trait]
impl ScheduleStore for MemoryStore {
    async fn due_entries(
        &self,
        tenant: TenantId,
        kind: DueKind,
        until: DateTime<Utc>,
        page: &PageRequest,
    ) -> Result<Page<DueEntry>> {
        page.validate()?;
        let after = page.after.as_ref().map(Cursor::as_due).transpose()?;
        let s = self.lock();
        let mut due: Vec<DueEntry> = marks(&s, tenant, kind)
            .into_iter()
            .filter_map(|(id, mark)| {
                let due_at = match s.schedule.entries.get(&(tenant, kind, id)) {
                    Some((at, m)) if *m == mark => (*at)?,
                    _ => CHANGED,
                };
                (due_at <= until).then_some(DueEntry { id, due_at, mark })
            })
            .filter(|e| after.is_none_or(|a| (e.due_at, e.id) > a))
            .collect();
        due.sort_by_key(|e| (e.due_at, e.id));
        due.truncate(page.limit as usize + 1);
        Ok(Page::from_overfetch(due, page.limit, |e| {
            Cursor::due(e.due_at, e.id)
        }))
    }

    async fn reschedule(
        &self,
        tenant: TenantId,
        kind: DueKind,
        entries: &[Reschedule],
    ) -> Result<usize> {
        let mut s = self.lock();
        let current = marks(&s, tenant, kind);
        let mut stored = 0;
        for e in entries {
            if current.get(&e.id) == Some(&e.mark) {
                s.schedule
                    .entries
                    .insert((tenant, kind, e.id), (e.next, e.mark));
                stored += 1;
            }
        }
        Ok(stored)
    }

    async fn schedule_basis(&self, tenant: TenantId, kind: DueKind) -> Result<Option<String>> {
        Ok(self.lock().schedule.basis.get(&(tenant, kind)).cloned())
    }

    async fn tenants(&self, after: Option<TenantId>, limit: u32) -> Result<Vec<TenantId>> {
        let s = self.lock();
        let mut out: Vec<TenantId> = Vec::new();
        for (t, _) in s.customers.keys() {
            if after.is_none_or(|a| *t > a) && out.last() != Some(t) {
                out.push(*t);
                if out.len() >= limit as usize {
                    break;
                }
            }
        }
        Ok(out)
    }

    async fn take_lease(
        &self,
        tenant: TenantId,
        job: &str,
        holder: Uuid,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<bool> {
        let mut s = self.lock();
        let key = (tenant, job.to_string());
        match s.schedule.leases.get(&key) {
            Some((h, u)) if *h != holder && *u > now => Ok(false),
            _ => {
                s.schedule.leases.insert(key, (holder, until));
                Ok(true)
            }
        }
    }

    async fn release_lease(&self, tenant: TenantId, job: &str, holder: Uuid) -> Result<()> {
        let mut s = self.lock();
        let key = (tenant, job.to_string());
        if s.schedule
            .leases
            .get(&key)
            .is_some_and(|(h, _)| *h == holder)
        {
            s.schedule.leases.remove(&key);
        }
        Ok(())
    }

    async fn reset_schedule(&self, tenant: TenantId, kind: DueKind, basis: &str) -> Result<u64> {
        let mut s = self.lock();
        let count = marks(&s, tenant, kind).len() as u64;
        *s.schedule.resets.entry((tenant, kind)).or_default() += 1;
        s.schedule.basis.insert((tenant, kind), basis.to_string());
        Ok(count)
    }
}
