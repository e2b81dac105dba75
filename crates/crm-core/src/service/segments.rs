//! The segments service.

use std::sync::Arc;

use tracing::instrument;

use super::{Ctx, MAX_BATCH};
use crate::access::{Action, RecordKind};
use crate::error::{Error, Result};
use crate::id::CustomerId;
use crate::page::{Page, PageRequest};
use crate::ports::{Capability, SegmentStore};
use crate::segment::{FieldSchema, MembershipChange, Rule, Segment, SegmentId};

/// Segments of one tenant: preview rules, create segments, refresh them, read members.
/// From [`TenantCrm::segments`](super::TenantCrm::segments).
///
/// On a principal-scoped handle, segment definitions are readable, memberships show only
/// the customers the principal reads (others are [`Error::Forbidden`]), previews count
/// and list only them, and creation, refreshes and hand-picked changes are the system
/// handle's.
#[derive(Clone)]
pub struct Segments {
    ctx: Ctx,
    segment_store: Arc<dyn SegmentStore>,
}

debug_by_tenant!(Segments);

impl Segments {
    pub(super) fn new(ctx: Ctx, segment_store: Arc<dyn SegmentStore>) -> Self {
        Segments { ctx, segment_store }
    }

    /// Previews a rule: how many customers it selects now, and the first page of them.
    /// The rule is type-checked against `schema` first.
    ///
    /// On a scoped handle, of the customers the principal reads: what it reaches is added
    /// to the rule ([`Visibility::customer_rule`](crate::access::Visibility::customer_rule))
    /// so the adapter counts in one query; when that rule would be too large, or does not
    /// check against `schema` (a sharing rule over other attributes), the members are
    /// filtered one by one instead, with the same answer.
    #[instrument(skip_all, fields(tenant = %self.ctx.tenant))]
    pub async fn preview(
        &self,
        rule: &Rule,
        schema: &FieldSchema,
        page: &PageRequest,
    ) -> Result<(u64, Page<CustomerId>)> {
        let tenant = self.ctx.tenant;
        self.ctx.need(Capability::Segments, "preview")?;
        schema.check(rule)?;
        page.validate()?;
        let now = self.ctx.now();
        let scoped = match self.ctx.principal() {
            None => None,
            Some(v) => {
                let within = v
                    .customer_rule(RecordKind::Customers, Action::Read)
                    .ok()
                    .map(|reach| reach.map(|r| Rule::and(rule.clone(), r)));
                match within {
                    Some(Some(both)) if schema.check(&both).is_ok() => Some(both),
                    Some(None) => None,
                    _ => return self.preview_filtered(rule, schema, page).await,
                }
            }
        };
        let rule = scoped.as_ref().unwrap_or(rule);
        let count = self
            .segment_store
            .count_matching(tenant, rule, schema, now)
            .await?;
        let first = self
            .segment_store
            .find_matching(tenant, rule, schema, now, page)
            .await?;
        Ok((count, first))
    }

    /// [`Segments::preview`] on a scoped handle, member by member: every match read, the
    /// ones the principal reads counted, the first page of them kept.
    async fn preview_filtered(
        &self,
        rule: &Rule,
        schema: &FieldSchema,
        page: &PageRequest,
    ) -> Result<(u64, Page<CustomerId>)> {
        use super::ctx::Visible;
        let (tenant, now) = (self.ctx.tenant, self.ctx.now());
        let mut count: u64 = 0;
        let mut first = Vec::new();
        let mut next = None;
        let mut request = page.clone();
        loop {
            let got = self
                .segment_store
                .find_matching(tenant, rule, schema, now, &request)
                .await?;
            for id in got.items {
                if id.visible(&self.ctx).await? {
                    count = count.saturating_add(1);
                    if first.len() < page.limit as usize {
                        first.push(id);
                    } else if next.is_none() {
                        next = first.last().map(|last: &CustomerId| last.cursor());
                    }
                }
            }
            match got.next {
                Some(cursor) => request = PageRequest::after(cursor, 500),
                None => return Ok((count, Page { items: first, next })),
            }
        }
    }

    /// Stores a new segment (a dynamic one's rule is type-checked against `schema`);
    /// `created_at` is set to now. Errors: validation, [`Error::Duplicate`] (id or name).
    #[instrument(skip_all, fields(tenant = %self.ctx.tenant, segment = %segment.id))]
    pub async fn create(&self, mut segment: Segment, schema: &FieldSchema) -> Result<Segment> {
        self.ctx.system_only("segments.create")?;
        let tenant = self.ctx.tenant;
        self.ctx.need(Capability::Segments, "create_segment")?;
        if let Some(rule) = segment.rule() {
            schema.check(rule)?;
        }
        segment.created_at = self.ctx.now();
        self.segment_store.save_segment(tenant, &segment).await?;
        Ok(segment)
    }

    /// A segment by id.
    #[instrument(skip(self), fields(tenant = %self.ctx.tenant))]
    pub async fn get(&self, id: SegmentId) -> Result<Segment> {
        let tenant = self.ctx.tenant;
        self.ctx.need(Capability::Segments, "segment")?;
        self.segment_store.get_segment(tenant, id).await
    }

    /// Every segment of the tenant, by name.
    #[instrument(skip(self), fields(tenant = %self.ctx.tenant))]
    pub async fn list(&self) -> Result<Vec<Segment>> {
        let tenant = self.ctx.tenant;
        self.ctx.need(Capability::Segments, "segments")?;
        self.segment_store.list_segments(tenant).await
    }

    /// Re-evaluates a dynamic segment now and stores its members; returns who entered and
    /// who left since the last refresh (for campaigns and notices). The rule is checked
    /// against `schema` again, since attribute definitions may have changed.
    #[instrument(skip(self, schema), fields(tenant = %self.ctx.tenant))]
    pub async fn refresh(&self, id: SegmentId, schema: &FieldSchema) -> Result<MembershipChange> {
        self.ctx.system_only("segments.refresh")?;
        let tenant = self.ctx.tenant;
        self.ctx.need(Capability::Segments, "refresh_segment")?;
        let segment = self.segment_store.get_segment(tenant, id).await?;
        schema.check(segment.rule_to_refresh()?)?;
        let now = self.ctx.now();
        self.segment_store
            .refresh_segment(
                tenant,
                id,
                schema,
                now,
                self.ctx.events()?.on().then_some(now),
            )
            .await
    }

    /// Adds and removes members of a static segment.
    #[instrument(skip(self), fields(tenant = %self.ctx.tenant))]
    pub async fn change_static_members(
        &self,
        id: SegmentId,
        add: Vec<CustomerId>,
        remove: Vec<CustomerId>,
    ) -> Result<MembershipChange> {
        self.ctx.system_only("segments.change_static_members")?;
        let tenant = self.ctx.tenant;
        self.ctx
            .need(Capability::Segments, "change_static_members")?;
        if add.len() + remove.len() > MAX_BATCH {
            return Err(Error::validation(
                "members",
                format!("at most {MAX_BATCH} changes per call"),
            ));
        }
        let at = self.ctx.events()?.on().then(|| self.ctx.now());
        self.segment_store
            .change_static_members(tenant, id, add, remove, at)
            .await
    }

    /// A segment's members, by id.
    #[instrument(skip(self), fields(tenant = %self.ctx.tenant))]
    pub async fn members(&self, id: SegmentId, page: &PageRequest) -> Result<Page<CustomerId>> {
        let tenant = self.ctx.tenant;
        self.ctx.need(Capability::Segments, "segment_members")?;
        page.validate()?;
        self.ctx
            .visible_page(page, |p| async move {
                self.segment_store.segment_members(tenant, id, &p).await
            })
            .await
    }

    /// Whether a customer is in a segment.
    #[instrument(skip(self), fields(tenant = %self.ctx.tenant))]
    pub async fn is_member(&self, id: SegmentId, customer: CustomerId) -> Result<bool> {
        let tenant = self.ctx.tenant;
        self.ctx.need(Capability::Segments, "is_member")?;
        self.ctx
            .check_id(RecordKind::Customers, Action::Read, customer)
            .await?;
        self.segment_store.is_member(tenant, id, customer).await
    }

    /// The segments a customer is in.
    #[instrument(skip(self), fields(tenant = %self.ctx.tenant))]
    pub async fn of_customer(&self, customer: CustomerId) -> Result<Vec<SegmentId>> {
        let tenant = self.ctx.tenant;
        self.ctx.need(Capability::Segments, "segments_of")?;
        self.ctx
            .check_id(RecordKind::Customers, Action::Read, customer)
            .await?;
        self.segment_store.segments_of(tenant, customer).await
    }
}
