//! Keyset pagination: a page of results and an opaque cursor to the next one.
//!
//! Cursors carry the sort key of the last item seen, so a page never repeats or skips an
//! item when rows are inserted between calls (rows inserted after the cursor position
//! appear on a later page; rows inserted before it do not shift anything).

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::id::{CaseId, CustomerId, InteractionId, MessageId, OpportunityId, TaskId};

/// Where a page starts: after `after` (or at the beginning), at most `limit` items.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PageRequest {
    /// The cursor of the previous page's `next`, or `None` for the first page.
    pub after: Option<Cursor>,
    /// Items per page, 1 to [`PageRequest::MAX_LIMIT`].
    pub limit: u32,
}

impl PageRequest {
    /// Largest page size.
    pub const MAX_LIMIT: u32 = 1000;

    /// The first page of `limit` items.
    pub fn first(limit: u32) -> Self {
        PageRequest { after: None, limit }
    }

    /// The page after `cursor`.
    pub fn after(cursor: Cursor, limit: u32) -> Self {
        PageRequest {
            after: Some(cursor),
            limit,
        }
    }

    /// Checks the limit; the error names `limit`.
    pub fn validate(&self) -> Result<(), Error> {
        if self.limit == 0 || self.limit > Self::MAX_LIMIT {
            return Err(Error::validation(
                "limit",
                format!("must be 1 to {}, got {}", Self::MAX_LIMIT, self.limit),
            ));
        }
        Ok(())
    }
}

impl Default for PageRequest {
    fn default() -> Self {
        Self::first(100)
    }
}

/// One page of results.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Page<T> {
    /// The items, in the listing's order.
    pub items: Vec<T>,
    /// The cursor for the next page, or `None` when this is the last one.
    pub next: Option<Cursor>,
}

impl<T> Page<T> {
    /// Makes a page from up to `limit + 1` fetched rows: if there are more than `limit`, the
    /// extra row is dropped and `cursor_of` the last kept item becomes `next`.
    pub fn from_overfetch(mut rows: Vec<T>, limit: u32, cursor_of: impl Fn(&T) -> Cursor) -> Self {
        let limit = limit as usize;
        if rows.len() > limit {
            rows.truncate(limit);
            let next = rows.last().map(cursor_of);
            Page { items: rows, next }
        } else {
            Page {
                items: rows,
                next: None,
            }
        }
    }
}

/// An opaque position in a listing. Obtain one from [`Page::next`]; a host may store and
/// send it as text (`to_string` / [`Cursor::from_text`]).
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Cursor(String);

impl Cursor {
    /// Wraps cursor text received from a client; it is checked when used.
    pub fn from_text(text: &str) -> Self {
        Cursor(text.to_string())
    }

    /// The cursor after customer `id` in a customer listing (ordered by id).
    pub fn customer(id: CustomerId) -> Self {
        Cursor(format!("c:{id}"))
    }

    /// The customer id inside a customer-listing cursor.
    pub fn as_customer(&self) -> Result<CustomerId, Error> {
        let rest = self
            .0
            .strip_prefix("c:")
            .ok_or_else(|| Error::validation("cursor", "not a customer-listing cursor"))?;
        CustomerId::parse_field(rest, "cursor")
    }

    /// The cursor after case `id` in a listing ordered by id.
    pub fn case(id: CaseId) -> Self {
        Cursor(format!("k:{id}"))
    }

    /// The case id inside a case-listing cursor.
    pub fn as_case(&self) -> Result<CaseId, Error> {
        let rest = self
            .0
            .strip_prefix("k:")
            .ok_or_else(|| Error::validation("cursor", "not a case-listing cursor"))?;
        CaseId::parse_field(rest, "cursor")
    }

    /// The cursor after task `id` in a listing ordered by id.
    pub fn task(id: TaskId) -> Self {
        Cursor(format!("j:{id}"))
    }

    /// The task id inside a task-listing cursor.
    pub fn as_task(&self) -> Result<TaskId, Error> {
        let rest = self
            .0
            .strip_prefix("j:")
            .ok_or_else(|| Error::validation("cursor", "not a task-listing cursor"))?;
        TaskId::parse_field(rest, "cursor")
    }

    /// The cursor after opportunity `id` in a listing ordered by id.
    pub fn opportunity(id: OpportunityId) -> Self {
        Cursor(format!("o:{id}"))
    }

    /// The opportunity id inside an opportunity-listing cursor.
    pub fn as_opportunity(&self) -> Result<OpportunityId, Error> {
        let rest = self
            .0
            .strip_prefix("o:")
            .ok_or_else(|| Error::validation("cursor", "not an opportunity-listing cursor"))?;
        OpportunityId::parse_field(rest, "cursor")
    }

    /// The cursor after outbox message `id` in a listing ordered by id.
    pub fn message(id: MessageId) -> Self {
        Cursor(format!("m:{id}"))
    }

    /// The message id inside a message-listing cursor.
    pub fn as_message(&self) -> Result<MessageId, Error> {
        let rest = self
            .0
            .strip_prefix("m:")
            .ok_or_else(|| Error::validation("cursor", "not a message-listing cursor"))?;
        MessageId::parse_field(rest, "cursor")
    }

    /// The cursor after an audit entry (by version, newest first).
    pub fn audit(version: u64) -> Self {
        Cursor(format!("a:{version}"))
    }

    /// The version inside an audit cursor.
    pub fn as_audit(&self) -> Result<u64, Error> {
        self.0
            .strip_prefix("a:")
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| Error::validation("cursor", "not an audit cursor"))
    }

    /// The cursor after a due entry (ordered by instant, then id).
    pub fn due(at: DateTime<Utc>, id: uuid::Uuid) -> Self {
        Cursor(format!("d:{}:{id}", at.timestamp_micros()))
    }

    /// The instant and id inside a due-entry cursor.
    pub fn as_due(&self) -> Result<(DateTime<Utc>, uuid::Uuid), Error> {
        let bad = || Error::validation("cursor", "not a due-entry cursor");
        let rest = self.0.strip_prefix("d:").ok_or_else(bad)?;
        let (micros, id) = rest.split_once(':').ok_or_else(bad)?;
        let micros: i64 = micros.parse().map_err(|_| bad())?;
        let at = DateTime::from_timestamp_micros(micros).ok_or_else(bad)?;
        Ok((at, uuid::Uuid::parse_str(id).map_err(|_| bad())?))
    }

    /// The cursor after an interaction in a timeline (ordered by time, then id, newest first).
    pub fn timeline(at: DateTime<Utc>, id: InteractionId) -> Self {
        Cursor(format!("t:{}:{id}", at.timestamp_micros()))
    }

    /// The time and id inside a timeline cursor.
    pub fn as_timeline(&self) -> Result<(DateTime<Utc>, InteractionId), Error> {
        let bad = || Error::validation("cursor", "not a timeline cursor");
        let rest = self.0.strip_prefix("t:").ok_or_else(bad)?;
        let (micros, id) = rest.split_once(':').ok_or_else(bad)?;
        let micros: i64 = micros.parse().map_err(|_| bad())?;
        let at = DateTime::from_timestamp_micros(micros).ok_or_else(bad)?;
        Ok((at, InteractionId::parse_field(id, "cursor")?))
    }
}

impl fmt::Display for Cursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Cursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Cursor({})", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_reject_garbage() {
        let id = CustomerId::new();
        let at = DateTime::from_timestamp_micros(1_700_000_000_123_456).unwrap();
        let due = Cursor::due(at, id.as_uuid());
        assert_eq!(due.as_due().unwrap(), (at, id.as_uuid()));
        assert!(Cursor::from_text("d:x:y").as_due().is_err());
        assert!(Cursor::customer(id).as_due().is_err());
        assert_eq!(Cursor::customer(id).as_customer().unwrap(), id);
        let at = DateTime::from_timestamp_micros(1_700_000_000_123_456).unwrap();
        let iid = InteractionId::new();
        assert_eq!(Cursor::timeline(at, iid).as_timeline().unwrap(), (at, iid));
        for bad in ["", "c:", "c:xyz", "t:1", "t:x:y"] {
            let c = Cursor::from_text(bad);
            assert!(
                c.as_customer().is_err() && c.as_timeline().is_err(),
                "{bad}"
            );
        }
        assert_eq!(
            Cursor::customer(id).as_timeline().unwrap_err().field(),
            Some("cursor")
        );
    }

    #[test]
    fn overfetch_makes_next_only_when_more() {
        let p = Page::from_overfetch(vec![1, 2, 3], 2, |n| Cursor::from_text(&n.to_string()));
        assert_eq!(p.items, vec![1, 2]);
        assert_eq!(p.next, Some(Cursor::from_text("2")));
        let p = Page::from_overfetch(vec![1, 2], 2, |n| Cursor::from_text(&n.to_string()));
        assert_eq!(p.next, None);
        assert!(PageRequest::first(0).validate().is_err());
        assert!(PageRequest::first(1001).validate().is_err());
    }
}
