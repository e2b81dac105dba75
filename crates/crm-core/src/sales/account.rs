//! Accounts: organisations with the people who work there, and the organisations' hierarchy.
//!
//! A customer record stays one party, a person or an organisation. A [`Relationship`]
//! says that a person works at an organisation: the parts the person plays in buying
//! ([`ContactRole`]s), a title, whether this is the person's primary account, and when the
//! relationship began and ended. An organisation may have a parent organisation; the
//! hierarchy has no cycles and at most [`MAX_HIERARCHY_DEPTH`] levels.

use std::collections::BTreeSet;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use super::opportunity::{note, ContactRole};
use crate::error::{Error, Result};
use crate::id::CustomerId;

/// Most levels of an organisation hierarchy: a root and its descendants down to this
/// many organisations in one line.
pub const MAX_HIERARCHY_DEPTH: usize = 8;

/// Most organisations one person may be related to.
pub const MAX_ACCOUNTS_PER_PERSON: usize = 64;

/// A person working at an organisation.
///
/// One relationship per pair: storing it again replaces it. At most one of a person's
/// relationships is primary; storing a primary one makes the others not primary.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Relationship {
    /// The organisation (the account).
    pub organization: CustomerId,
    /// The person (the contact).
    pub person: CustomerId,
    /// The parts the person plays in the organisation's buying.
    pub roles: BTreeSet<ContactRole>,
    /// The person's job title (1 to [`MAX_NOTE_CHARS`](super::MAX_NOTE_CHARS) characters).
    pub title: Option<String>,
    /// Whether this is the person's primary account (the one a contact's account fields
    /// and ownership follow).
    pub primary: bool,
    /// The first day the relationship holds (`None`: since always).
    pub valid_from: Option<NaiveDate>,
    /// The last day the relationship holds (`None`: still holds).
    pub valid_to: Option<NaiveDate>,
    /// When it was last stored.
    pub updated_at: DateTime<Utc>,
}

impl Relationship {
    /// A relationship without roles, title or validity period, not primary.
    pub fn new(organization: CustomerId, person: CustomerId, at: DateTime<Utc>) -> Self {
        Relationship {
            organization,
            person,
            roles: BTreeSet::new(),
            title: None,
            primary: false,
            valid_from: None,
            valid_to: None,
            updated_at: at,
        }
    }

    /// Adds a role.
    pub fn role(mut self, role: ContactRole) -> Self {
        self.roles.insert(role);
        self
    }

    /// Sets the title. Errors: validation on `title`.
    pub fn title(mut self, title: &str) -> Result<Self> {
        self.title = Some(note("title", title)?);
        Ok(self)
    }

    /// Makes it the person's primary account.
    pub fn primary(mut self) -> Self {
        self.primary = true;
        self
    }

    /// Sets the validity period. Errors: validation on `valid_to` if it ends before it
    /// begins.
    pub fn valid(mut self, from: Option<NaiveDate>, to: Option<NaiveDate>) -> Result<Self> {
        self.valid_from = from;
        self.valid_to = to;
        self.validate()?;
        Ok(self)
    }

    /// Whether it holds on `day`.
    pub fn holds_on(&self, day: NaiveDate) -> bool {
        self.valid_from.is_none_or(|f| f <= day) && self.valid_to.is_none_or(|t| day <= t)
    }

    /// Checks the fields: two different parties, a title of 1 to
    /// [`MAX_NOTE_CHARS`](super::MAX_NOTE_CHARS) characters without control characters,
    /// a period that does not end before it begins. The parties' kinds are the service's
    /// check (the records may not be at hand).
    pub fn validate(&self) -> Result<()> {
        if self.organization == self.person {
            return Err(Error::validation(
                "person",
                "a party cannot be its own contact",
            ));
        }
        if let Some(title) = &self.title {
            if note("title", title)? != *title {
                return Err(Error::validation(
                    "title",
                    "must not start or end with white space",
                ));
            }
        }
        if let (Some(from), Some(to)) = (self.valid_from, self.valid_to) {
            if to < from {
                return Err(Error::validation(
                    "valid_to",
                    format!("{to} is before valid_from {from}"),
                ));
            }
        }
        Ok(())
    }

    /// The relationship with the title, personal data, removed (an erasure).
    pub fn anonymised(mut self) -> Self {
        self.title = None;
        self
    }

    /// Makes a relationship naming a `gone` party name `survivor` (a merge). Returns
    /// whether it changed.
    pub fn merge_parties(&mut self, gone: &[CustomerId], survivor: CustomerId) -> bool {
        let mut changed = false;
        if gone.contains(&self.organization) {
            self.organization = survivor;
            changed = true;
        }
        if gone.contains(&self.person) {
            self.person = survivor;
            changed = true;
        }
        changed
    }
}

/// Which relationships to list.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "of", content = "id")]
pub enum RelationshipQuery {
    /// The people related to this organisation, by person id.
    Contacts(CustomerId),
    /// The organisations this person is related to, by organisation id.
    Accounts(CustomerId),
}

impl RelationshipQuery {
    /// Whether `r` is listed.
    pub fn matches(&self, r: &Relationship) -> bool {
        match self {
            RelationshipQuery::Contacts(org) => r.organization == *org,
            RelationshipQuery::Accounts(person) => r.person == *person,
        }
    }

    /// The id a listing is ordered and paged by: the other party.
    pub fn key_of(&self, r: &Relationship) -> CustomerId {
        match self {
            RelationshipQuery::Contacts(_) => r.person,
            RelationshipQuery::Accounts(_) => r.organization,
        }
    }
}

/// Checks a parent link `organization` → `parent` against the hierarchy it joins:
/// `line` is `parent`'s line of ancestors (nearest first, as
/// [`SalesStore::account_line`](crate::ports::SalesStore::account_line) answers it) and
/// `height` the number of levels of `organization`'s own subtree (1 for an organisation
/// without subsidiaries). Errors: validation on `parent` for a cycle or a line deeper than
/// [`MAX_HIERARCHY_DEPTH`].
pub fn check_parent(
    organization: CustomerId,
    parent: CustomerId,
    line: &[CustomerId],
    height: usize,
) -> Result<()> {
    if parent == organization || line.contains(&organization) {
        return Err(Error::validation(
            "parent",
            format!("{parent} is {organization} or one of its subsidiaries: that would be a cycle"),
        ));
    }
    // parent's line + parent + the subtree
    let depth = line.len().saturating_add(1).saturating_add(height);
    if depth > MAX_HIERARCHY_DEPTH {
        return Err(Error::validation(
            "parent",
            format!("the hierarchy would be {depth} levels deep, at most {MAX_HIERARCHY_DEPTH}"),
        ));
    }
    Ok(())
}

/// An organisation's place in the hierarchy, as a merge reads it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HierarchyPlace {
    /// The organisation.
    pub id: CustomerId,
    /// Its ancestors, its parent first.
    pub line: Vec<CustomerId>,
    /// The levels of its subtree (1 without subsidiaries).
    pub height: usize,
}

/// What a merge does to the hierarchy, checked before anything changes: the survivor
/// keeps its parent, or, without one, takes the parent of the first merged organisation
/// whose line holds no party of the merge; the merged organisations' subsidiaries move
/// under the survivor. Answers the survivor's parent afterwards.
///
/// Errors: validation on `merged` when a merged organisation is the survivor's ancestor
/// or descendant (detach it first), or when the survivor's tree could grow deeper than
/// [`MAX_HIERARCHY_DEPTH`].
pub fn merge_hierarchy(
    survivor: &HierarchyPlace,
    merged: &[HierarchyPlace],
) -> Result<Option<CustomerId>> {
    let party = |id: &CustomerId| *id == survivor.id || merged.iter().any(|m| m.id == *id);
    for m in merged {
        if survivor.line.contains(&m.id) || m.line.contains(&survivor.id) {
            return Err(Error::validation(
                "merged",
                format!(
                    "{} and {} are in one line of the organisation hierarchy: detach one first",
                    m.id, survivor.id
                ),
            ));
        }
    }
    let line: &[CustomerId] = if survivor.line.is_empty() {
        merged
            .iter()
            .find(|m| !m.line.is_empty() && !m.line.iter().any(party))
            .map_or(&[], |m| m.line.as_slice())
    } else {
        &survivor.line
    };
    let height = merged
        .iter()
        .map(|m| m.height)
        .fold(survivor.height, usize::max);
    let depth = line.len().saturating_add(height);
    if depth > MAX_HIERARCHY_DEPTH {
        return Err(Error::validation(
            "merged",
            format!(
                "the merged organisation's hierarchy would be {depth} levels deep, at most \
                 {MAX_HIERARCHY_DEPTH}"
            ),
        ));
    }
    Ok(line.first().copied())
}

/// A merge's relationships: given every stored relationship naming the survivor or a
/// `gone` party, the relationships stored afterwards. Each names the survivor in place of
/// a gone party; a pair the survivor already has keeps the survivor's own; a party related
/// to itself is dropped; a person keeps at most one primary relationship (its own first).
pub fn merge_relationships(
    survivor: CustomerId,
    gone: &[CustomerId],
    mut rows: Vec<Relationship>,
) -> Vec<Relationship> {
    // The survivor's own rows first, so that they win every clash.
    rows.sort_by_key(|r| gone.contains(&r.organization) || gone.contains(&r.person));
    let mut out: Vec<Relationship> = Vec::with_capacity(rows.len());
    for mut r in rows {
        r.merge_parties(gone, survivor);
        if r.organization == r.person
            || out
                .iter()
                .any(|o| o.organization == r.organization && o.person == r.person)
        {
            continue;
        }
        if r.primary && out.iter().any(|o| o.person == r.person && o.primary) {
            r.primary = false;
        }
        out.push(r);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, 5, 9, 0, 0).unwrap()
    }

    #[test]
    fn relationships_check_their_fields() {
        let (org, person) = (CustomerId::new(), CustomerId::new());
        let r = Relationship::new(org, person, at())
            .role(ContactRole::DecisionMaker)
            .title("Head of purchasing")
            .unwrap();
        r.validate().unwrap();
        let own = Relationship::new(org, org, at());
        assert_eq!(own.validate().unwrap_err().field(), Some("person"));
        assert_eq!(
            Relationship::new(org, person, at())
                .title(" \n")
                .unwrap_err()
                .field(),
            Some("title")
        );
        let mut padded = r.clone();
        padded.title = Some(" CEO".into());
        assert_eq!(padded.validate().unwrap_err().field(), Some("title"));
        let day = |d| NaiveDate::from_ymd_opt(2026, 1, d).unwrap();
        let err = r.clone().valid(Some(day(5)), Some(day(4))).unwrap_err();
        assert_eq!(err.field(), Some("valid_to"));
        let held = r.valid(Some(day(5)), Some(day(9))).unwrap();
        assert!(!held.holds_on(day(4)));
        assert!(held.holds_on(day(5)) && held.holds_on(day(9)));
        assert!(!held.holds_on(day(10)));
        assert_eq!(held.clone().anonymised().title, None);
    }

    #[test]
    fn roles_are_named_as_serialised() {
        for role in [
            ContactRole::DecisionMaker,
            ContactRole::EconomicBuyer,
            ContactRole::Influencer,
            ContactRole::Technical,
            ContactRole::Billing,
            ContactRole::Other,
        ] {
            assert_eq!(serde_json::to_value(role).unwrap(), role.as_str());
        }
    }

    #[test]
    fn merges_rename_either_party() {
        let (org, person, other) = (CustomerId::new(), CustomerId::new(), CustomerId::new());
        let mut r = Relationship::new(org, person, at());
        assert!(!r.merge_parties(&[other], org));
        assert!(r.merge_parties(&[person], other));
        assert_eq!(r.person, other);
        let survivor = CustomerId::new();
        assert!(r.merge_parties(&[org], survivor));
        assert_eq!(r.organization, survivor);
    }

    #[test]
    fn merges_keep_the_survivors_pairs_and_one_primary() {
        let (org, s, g, other) = (
            CustomerId::new(),
            CustomerId::new(),
            CustomerId::new(),
            CustomerId::new(),
        );
        let mine = Relationship::new(org, s, at()).primary();
        let theirs = Relationship::new(org, g, at())
            .role(ContactRole::Billing)
            .primary();
        let elsewhere = Relationship::new(other, g, at()).primary();
        let out = merge_relationships(s, &[g], vec![theirs, elsewhere, mine.clone()]);
        assert_eq!(out.len(), 2);
        assert_eq!(out[0], mine);
        assert_eq!((out[1].organization, out[1].person), (other, s));
        assert!(
            !out[1].primary,
            "the survivor keeps its own primary account"
        );
        // a person merged into its organisation loses the link to itself
        let out = merge_relationships(org, &[s], vec![Relationship::new(org, s, at())]);
        assert!(out.is_empty());
    }

    #[test]
    fn merges_refuse_one_line_and_deep_trees() {
        let id = CustomerId::new;
        let (s, g, p, q) = (id(), id(), id(), id());
        let place = |id, line: Vec<CustomerId>, height| HierarchyPlace { id, line, height };
        // g under s: one line
        let err = merge_hierarchy(&place(s, vec![], 2), &[place(g, vec![s], 1)]).unwrap_err();
        assert_eq!(err.field(), Some("merged"));
        let err = merge_hierarchy(&place(s, vec![g], 1), &[place(g, vec![], 2)]).unwrap_err();
        assert_eq!(err.field(), Some("merged"));
        // the survivor keeps its parent, or takes the merged one's
        assert_eq!(
            merge_hierarchy(&place(s, vec![p], 1), &[place(g, vec![q], 1)]).unwrap(),
            Some(p)
        );
        assert_eq!(
            merge_hierarchy(&place(s, vec![], 1), &[place(g, vec![q, p], 1)]).unwrap(),
            Some(q)
        );
        assert_eq!(
            merge_hierarchy(&place(s, vec![], 1), &[place(g, vec![], 3)]).unwrap(),
            None
        );
        let deep = place(g, vec![], MAX_HIERARCHY_DEPTH);
        assert!(merge_hierarchy(&place(s, vec![], 1), std::slice::from_ref(&deep)).is_ok());
        let err = merge_hierarchy(&place(s, vec![p], 1), &[deep]).unwrap_err();
        assert_eq!(err.field(), Some("merged"));
    }

    #[test]
    fn parents_refuse_cycles_and_deep_lines() {
        let ids: Vec<CustomerId> = (0..10).map(|_| CustomerId::new()).collect();
        // ids[1] under ids[2] under ids[3]: ids[3] may not go under ids[1]
        let line = [ids[2], ids[3]];
        assert!(check_parent(ids[0], ids[1], &line, 1).is_ok());
        let err = check_parent(ids[3], ids[1], &line, 1).unwrap_err();
        assert_eq!(err.field(), Some("parent"));
        assert!(check_parent(ids[1], ids[1], &[], 1).is_err());
        // depth: the parent's line (2) + the parent + the subtree's height
        assert!(check_parent(ids[0], ids[1], &line, MAX_HIERARCHY_DEPTH - 3).is_ok());
        assert!(check_parent(ids[0], ids[1], &line, MAX_HIERARCHY_DEPTH - 2).is_err());
    }
}
