//! Reads of many records by id: the bound every adapter checks, and the fallback the
//! ports' default methods use (one read per id, a few at a time).

use std::collections::BTreeSet;
use std::future::Future;

use crate::error::{Error, Result};

/// Most ids one batch read takes ([`CustomerStore::get_customers`](super::CustomerStore::get_customers)
/// and its kind).
pub const MAX_IDS: usize = 1_000;

/// Reads of the fallback running at once.
const CONCURRENCY: usize = 8;

/// [`Error::Validation`] on the field `ids` when a batch read is given more than
/// [`MAX_IDS`] ids; adapters call it first.
pub fn check_ids(len: usize) -> Result<()> {
    check_len("ids", len)
}

/// [`Error::Validation`] on `field` when a batch call is given more than [`MAX_IDS`]
/// items.
pub fn check_len(field: &str, len: usize) -> Result<()> {
    if len > MAX_IDS {
        return Err(Error::validation(
            field,
            format!("at most {MAX_IDS} per call, got {len}"),
        ));
    }
    Ok(())
}

/// Runs the writes, a few at a time; per write, in order, whether it was stored
/// ([`Error::Conflict`] and [`Error::NotFound`] answer `false`; any other error ends the
/// call).
pub(crate) async fn stored_each<Fut>(writes: Vec<Fut>) -> Result<Vec<bool>>
where
    Fut: Future<Output = Result<()>>,
{
    use futures_util::stream::{self, StreamExt, TryStreamExt};
    stream::iter(writes)
        .map(stored)
        .buffered(CONCURRENCY)
        .try_collect()
        .await
}

/// Whether a write was stored.
async fn stored<Fut: Future<Output = Result<()>>>(write: Fut) -> Result<bool> {
    match write.await {
        Ok(()) => Ok(true),
        Err(Error::Conflict { .. } | Error::NotFound { .. }) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Runs `read` once per distinct id of `ids` (checked with [`check_ids`]), a few at a time;
/// what was found, with ids that are [`Error::NotFound`] left out.
pub(crate) async fn found<I, T, F, Fut>(ids: &[I], read: F) -> Result<Vec<(I, T)>>
where
    I: Copy + Ord,
    F: FnMut(I) -> Fut,
    Fut: Future<Output = Result<T>>,
{
    use futures_util::stream::{self, StreamExt, TryStreamExt};
    check_ids(ids.len())?;
    let distinct: BTreeSet<I> = ids.iter().copied().collect();
    let mut read = read;
    let reads: Vec<Option<(I, T)>> = stream::iter(distinct)
        .map(|id| {
            let fut = read(id);
            async move {
                match fut.await {
                    Ok(t) => Ok(Some((id, t))),
                    Err(Error::NotFound { .. }) => Ok(None),
                    Err(e) => Err(e),
                }
            }
        })
        .buffered(CONCURRENCY)
        .try_collect()
        .await?;
    Ok(reads.into_iter().flatten().collect())
}
