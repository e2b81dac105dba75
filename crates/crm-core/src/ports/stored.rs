//! Helpers for storage adapters, apart from the host-facing API: decoding what a backend
//! stored with errors that say what is corrupt, the compact encoding of a profile's
//! last-contact-per-staff map, and the checks and errors of outbox writes and leases.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use crate::error::Error;
use crate::error::Result;
use crate::id::{MessageId, UserId};
use crate::notify::OutboxMessage;

/// A [`Error::Corrupt`] of `backend` saying `what` could not be decoded.
pub fn corrupt(backend: &'static str, what: impl Into<String>) -> Error {
    Error::corrupt(backend, what)
}

/// An instant from microseconds since the Unix epoch.
pub fn from_micros(backend: &'static str, us: i64) -> Result<DateTime<Utc>, Error> {
    DateTime::from_timestamp_micros(us).ok_or_else(|| corrupt(backend, format!("timestamp {us}")))
}

/// A day as a number to store and index (days from the common era, ordered like the days).
pub fn day_number(day: chrono::NaiveDate) -> i64 {
    i64::from(chrono::Datelike::num_days_from_ce(&day))
}

/// The day a [`day_number`] stands for.
pub fn from_day_number(backend: &'static str, n: i64) -> Result<chrono::NaiveDate, Error> {
    i32::try_from(n)
        .ok()
        .and_then(chrono::NaiveDate::from_num_days_from_ce_opt)
        .ok_or_else(|| corrupt(backend, format!("day number {n}")))
}

/// One stored row of daily use (day number, user id bytes, kind, count) decoded; a value
/// out of its range is [`Error::Corrupt`].
pub fn daily_usage(
    backend: &'static str,
    day: i64,
    user: Vec<u8>,
    kind: &str,
    count: i64,
) -> Result<crate::access::DailyUsage, Error> {
    Ok(crate::access::DailyUsage {
        user: UserId::from_bytes(id_bytes(backend, user)?),
        day: from_day_number(backend, day)?,
        kind: crate::access::AccessKind::parse(kind)
            .ok_or_else(|| corrupt(backend, format!("access kind {kind:?}")))?,
        count: u64::try_from(count).map_err(|_| corrupt(backend, format!("use {count}")))?,
    })
}

/// The 16 bytes of a stored id.
pub fn id_bytes(backend: &'static str, blob: Vec<u8>) -> Result<[u8; 16], Error> {
    blob.try_into()
        .map_err(|b: Vec<u8>| corrupt(backend, format!("id of {} bytes", b.len())))
}

/// Bytes per packed contact: the user id, then microseconds as a big-endian i64.
pub const CONTACT_BYTES: usize = 24;

/// Packs a profile's "last contact per staff member" compactly. This map is most of a
/// profile row, and every batch rewrites the rows of the customers it touches, so its size
/// is write volume.
pub fn pack_contacts(map: &BTreeMap<UserId, DateTime<Utc>>) -> Vec<u8> {
    let mut out = Vec::with_capacity(map.len() * CONTACT_BYTES);
    for (user, at) in map {
        out.extend_from_slice(user.as_bytes());
        out.extend_from_slice(&at.timestamp_micros().to_be_bytes());
    }
    out
}

/// The inverse of [`pack_contacts`].
pub fn unpack_contacts(
    backend: &'static str,
    bytes: &[u8],
) -> Result<BTreeMap<UserId, DateTime<Utc>>, Error> {
    if !bytes.len().is_multiple_of(CONTACT_BYTES) {
        return Err(corrupt(
            backend,
            format!("contacts of {} bytes", bytes.len()),
        ));
    }
    bytes
        .chunks_exact(CONTACT_BYTES)
        .map(|c| {
            let mut id = [0u8; 16];
            id.copy_from_slice(&c[..16]);
            let mut us = [0u8; 8];
            us.copy_from_slice(&c[16..]);
            Ok((
                UserId::from_bytes(id),
                from_micros(backend, i64::from_be_bytes(us))?,
            ))
        })
        .collect()
}

/// Checks messages before an adapter writes them (errors name `messages[i]`).
pub fn check_messages(messages: &[OutboxMessage]) -> Result<()> {
    for (i, m) in messages.iter().enumerate() {
        m.notification
            .validate()
            .map_err(|e| e.in_field(&format!("messages[{i}].notification")))?;
    }
    Ok(())
}

/// The error an adapter returns when a lease is no longer the message's lease (it lapsed
/// and the message was claimed again, or the message is no longer pending):
/// [`Error::LeaseLost`].
pub fn lease_lost(id: MessageId) -> Error {
    Error::LeaseLost {
        entity: "message",
        id: id.to_string(),
    }
}

/// The error an adapter returns when asked to re-queue a message that is not dead.
pub fn not_dead(id: MessageId, state: &str) -> Error {
    Error::validation("state", format!("message {id} is {state}, not dead"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contacts_round_trip_and_bad_lengths_are_errors() {
        let map: BTreeMap<UserId, DateTime<Utc>> = (0..3)
            .map(|i| {
                (
                    UserId::new(),
                    DateTime::from_timestamp_micros(1_700_000_000_000_000 + i).unwrap(),
                )
            })
            .collect();
        let packed = pack_contacts(&map);
        assert_eq!(packed.len(), 3 * CONTACT_BYTES);
        assert_eq!(unpack_contacts("test", &packed).unwrap(), map);
        assert!(unpack_contacts("test", &packed[1..]).is_err());
        assert!(unpack_contacts("test", &[]).unwrap().is_empty());
        assert!(id_bytes("test", vec![1, 2]).is_err());
        assert!(from_micros("test", i64::MAX).is_err());
    }
}
