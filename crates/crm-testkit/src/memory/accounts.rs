//! Relationships and the organisation hierarchy of the in-memory store.

use crm_core::sales::{
    check_parent, merge_hierarchy, merge_relationships, HierarchyPlace, Relationship,
    RelationshipQuery, MAX_ACCOUNTS_PER_PERSON, MAX_HIERARCHY_DEPTH,
};

use super::*;

/// The account tables.
#[derive(Default)]
pub(super) struct AccountState {
    /// By (tenant, organisation, person).
    relationships: BTreeMap<(TenantId, CustomerId, CustomerId), Relationship>,
    /// Organisation → parent.
    parents: BTreeMap<Key<CustomerId>, CustomerId>,
}

impl AccountState {
    /// `organization`'s ancestors, its parent first (at most one more than the limit, so
    /// that a walk stops even on a cycle).
    pub(super) fn line(&self, tenant: TenantId, organization: CustomerId) -> Vec<CustomerId> {
        let mut line = Vec::new();
        let mut at = organization;
        while line.len() <= MAX_HIERARCHY_DEPTH {
            match self.parents.get(&(tenant, at)) {
                Some(p) => {
                    line.push(*p);
                    at = *p;
                }
                None => break,
            }
        }
        line
    }

    /// The levels of `organization`'s subtree, walked at most one level past the limit.
    fn height(&self, tenant: TenantId, organization: CustomerId) -> usize {
        let mut level = vec![organization];
        let mut height = 0;
        while !level.is_empty() && height <= MAX_HIERARCHY_DEPTH {
            height += 1;
            level = self
                .parents
                .iter()
                .filter(|((t, _), p)| *t == tenant && level.contains(p))
                .map(|((_, c), _)| *c)
                .collect();
        }
        height
    }

    fn place(&self, tenant: TenantId, id: CustomerId) -> HierarchyPlace {
        HierarchyPlace {
            id,
            line: self.line(tenant, id),
            height: self.height(tenant, id),
        }
    }

    /// Checks a merge against the hierarchy before anything changes; answers the
    /// survivor's parent afterwards.
    pub(super) fn plan_merge(
        &self,
        tenant: TenantId,
        gone: &[CustomerId],
        survivor: CustomerId,
    ) -> Result<Option<CustomerId>> {
        let merged: Vec<HierarchyPlace> = gone.iter().map(|g| self.place(tenant, *g)).collect();
        merge_hierarchy(&self.place(tenant, survivor), &merged)
    }

    /// Applies a merge planned by [`AccountState::plan_merge`].
    pub(super) fn merge(
        &mut self,
        tenant: TenantId,
        gone: &[CustomerId],
        survivor: CustomerId,
        parent: Option<CustomerId>,
    ) {
        let names = |id: &CustomerId| *id == survivor || gone.contains(id);
        let keys: Vec<_> = self
            .relationships
            .keys()
            .filter(|(t, o, p)| *t == tenant && (names(o) || names(p)))
            .copied()
            .collect();
        let rows = keys
            .iter()
            .filter_map(|k| self.relationships.remove(k))
            .collect();
        for r in merge_relationships(survivor, gone, rows) {
            self.relationships
                .insert((tenant, r.organization, r.person), r);
        }
        for g in gone {
            self.parents.remove(&(tenant, *g));
        }
        for ((t, _), p) in self.parents.iter_mut() {
            if *t == tenant && gone.contains(p) {
                *p = survivor;
            }
        }
        match parent {
            Some(p) => self.parents.insert((tenant, survivor), p),
            None => self.parents.remove(&(tenant, survivor)),
        };
    }

    /// An erasure: the person's relationships lose their titles.
    pub(super) fn anonymise(&mut self, tenant: TenantId, person: CustomerId) {
        for ((t, _, p), r) in self.relationships.iter_mut() {
            if *t == tenant && *p == person {
                r.title = None;
            }
        }
    }

    pub(super) fn put(&mut self, tenant: TenantId, r: &Relationship) -> Result<()> {
        let key = (tenant, r.organization, r.person);
        let others = self
            .relationships
            .iter()
            .filter(|((t, o, p), _)| *t == tenant && *p == r.person && *o != r.organization)
            .count();
        if others >= MAX_ACCOUNTS_PER_PERSON {
            return Err(Error::validation(
                "person",
                format!("is related to {MAX_ACCOUNTS_PER_PERSON} organisations already"),
            ));
        }
        if r.primary {
            for ((t, _, p), other) in self.relationships.iter_mut() {
                if *t == tenant && *p == r.person {
                    other.primary = false;
                }
            }
        }
        self.relationships.insert(key, r.clone());
        Ok(())
    }

    pub(super) fn remove(
        &mut self,
        tenant: TenantId,
        organization: CustomerId,
        person: CustomerId,
    ) -> Result<()> {
        self.relationships
            .remove(&(tenant, organization, person))
            .map(drop)
            .ok_or_else(|| Error::not_found("relationship", format!("{organization} / {person}")))
    }

    pub(super) fn list(
        &self,
        tenant: TenantId,
        query: &RelationshipQuery,
        after: Option<CustomerId>,
        limit: usize,
    ) -> Vec<Relationship> {
        let mut rows: Vec<&Relationship> = self
            .relationships
            .iter()
            .filter(|((t, _, _), r)| *t == tenant && query.matches(r))
            .map(|(_, r)| r)
            .filter(|r| after.is_none_or(|a| query.key_of(r) > a))
            .collect();
        rows.sort_by_key(|r| query.key_of(r));
        rows.into_iter().take(limit).cloned().collect()
    }

    /// The person's primary account.
    pub(super) fn primary_of(&self, tenant: TenantId, person: CustomerId) -> Option<CustomerId> {
        self.relationships
            .iter()
            .find(|((t, _, p), r)| *t == tenant && *p == person && r.primary)
            .map(|((_, o, _), _)| *o)
    }

    /// The people related to `organization`.
    pub(super) fn contacts(&self, tenant: TenantId, organization: CustomerId) -> Vec<CustomerId> {
        self.relationships
            .range((tenant, organization, CustomerId::from_bytes([0; 16]))..)
            .take_while(|((t, o, _), _)| *t == tenant && *o == organization)
            .map(|((_, _, p), _)| *p)
            .collect()
    }

    pub(super) fn set_parent(
        &mut self,
        tenant: TenantId,
        organization: CustomerId,
        parent: Option<CustomerId>,
    ) -> Result<()> {
        match parent {
            Some(p) => {
                check_parent(
                    organization,
                    p,
                    &self.line(tenant, p),
                    self.height(tenant, organization),
                )?;
                self.parents.insert((tenant, organization), p);
            }
            None => {
                self.parents.remove(&(tenant, organization));
            }
        }
        Ok(())
    }

    pub(super) fn subsidiaries(
        &self,
        tenant: TenantId,
        organization: CustomerId,
        after: Option<CustomerId>,
        limit: usize,
    ) -> Vec<CustomerId> {
        let mut rows: Vec<CustomerId> = self
            .parents
            .iter()
            .filter(|((t, c), p)| {
                *t == tenant && **p == organization && after.is_none_or(|a| *c > a)
            })
            .map(|((_, c), _)| *c)
            .collect();
        rows.sort();
        rows.truncate(limit);
        rows
    }
}
