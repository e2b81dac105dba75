//! Segments and value data of the in-memory store.

use super::*;

fn page_of_ids(
    ids: impl Iterator<Item = CustomerId>,
    page: &PageRequest,
) -> Result<Page<CustomerId>> {
    page.validate()?;
    let after = page.after.as_ref().map(Cursor::as_customer).transpose()?;
    let rows: Vec<CustomerId> = ids
        .filter(|id| after.is_none_or(|a| *id > a))
        .take(page.limit as usize + 1)
        .collect();
    Ok(Page::from_overfetch(rows, page.limit, |id| {
        Cursor::customer(*id)
    }))
}

#[async_trait]
impl SegmentStore for MemoryStore {
    async fn find_matching(
        &self,
        tenant: TenantId,
        rule: &Rule,
        schema: &FieldSchema,
        now: DateTime<Utc>,
        page: &PageRequest,
    ) -> Result<Page<CustomerId>> {
        let ids = self.lock().matching(tenant, rule, schema, now)?;
        page_of_ids(ids.into_iter(), page)
    }

    async fn count_matching(
        &self,
        tenant: TenantId,
        rule: &Rule,
        schema: &FieldSchema,
        now: DateTime<Utc>,
    ) -> Result<u64> {
        Ok(self.lock().matching(tenant, rule, schema, now)?.len() as u64)
    }

    async fn save_segment(&self, tenant: TenantId, segment: &Segment) -> Result<()> {
        let mut s = self.lock();
        let taken = s.segments.contains_key(&(tenant, segment.id))
            || s.segments
                .iter()
                .any(|((t, _), other)| *t == tenant && other.name == segment.name);
        if taken {
            return Err(Error::Duplicate {
                entity: "segment",
                key: format!("id {} or name {:?}", segment.id, segment.name.as_str()),
            });
        }
        s.segments.insert((tenant, segment.id), segment.clone());
        Ok(())
    }

    async fn get_segment(&self, tenant: TenantId, id: SegmentId) -> Result<Segment> {
        self.lock().segment(tenant, id).cloned()
    }

    async fn list_segments(&self, tenant: TenantId) -> Result<Vec<Segment>> {
        let s = self.lock();
        let mut all: Vec<Segment> = s
            .segments
            .iter()
            .filter(|((t, _), _)| *t == tenant)
            .map(|(_, seg)| seg.clone())
            .collect();
        all.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(all)
    }

    async fn refresh_segment(
        &self,
        tenant: TenantId,
        id: SegmentId,
        schema: &FieldSchema,
        now: DateTime<Utc>,
        events_at: Option<DateTime<Utc>>,
    ) -> Result<MembershipChange> {
        let mut s = self.lock();
        let rule = s.segment(tenant, id)?.rule_to_refresh()?.clone();
        let members: BTreeSet<CustomerId> = s
            .matching(tenant, &rule, schema, now)?
            .into_iter()
            .collect();
        s.replace_members_with_events(tenant, id, members, events_at)
    }

    async fn change_static_members(
        &self,
        tenant: TenantId,
        id: SegmentId,
        add: Vec<CustomerId>,
        remove: Vec<CustomerId>,
        events_at: Option<DateTime<Utc>>,
    ) -> Result<MembershipChange> {
        let mut s = self.lock();
        s.segment(tenant, id)?.check_static()?;
        if let Some(missing) = add
            .iter()
            .find(|c| !s.customers.contains_key(&(tenant, **c)))
        {
            return Err(not_found(*missing));
        }
        let mut members = s.members.get(&(tenant, id)).cloned().unwrap_or_default();
        for c in &remove {
            members.remove(c);
        }
        members.extend(add);
        s.replace_members_with_events(tenant, id, members, events_at)
    }

    async fn segment_members(
        &self,
        tenant: TenantId,
        id: SegmentId,
        page: &PageRequest,
    ) -> Result<Page<CustomerId>> {
        let s = self.lock();
        s.segment(tenant, id)?;
        let members = s.members.get(&(tenant, id)).cloned().unwrap_or_default();
        page_of_ids(members.into_iter(), page)
    }

    async fn is_member(
        &self,
        tenant: TenantId,
        id: SegmentId,
        customer: CustomerId,
    ) -> Result<bool> {
        let s = self.lock();
        s.segment(tenant, id)?;
        Ok(s.members
            .get(&(tenant, id))
            .is_some_and(|m| m.contains(&customer)))
    }

    async fn segments_of(&self, tenant: TenantId, customer: CustomerId) -> Result<Vec<SegmentId>> {
        let s = self.lock();
        if !s.customers.contains_key(&(tenant, customer)) {
            return Err(not_found(customer));
        }
        Ok(s.members
            .iter()
            .filter(|((t, _), m)| *t == tenant && m.contains(&customer))
            .map(|((_, id), _)| *id)
            .collect())
    }
}
