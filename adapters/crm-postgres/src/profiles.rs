//! Profiles on PostgreSQL: a stored row per customer plus pending deltas, and folding.
//!
//! A batch of interactions does not rewrite the profiles it touches. In the batch's
//! transaction it appends one row per touched customer to `profile_deltas` (binary `COPY`,
//! no row locks), holding what the batch adds ([`crm_core::profile::deltas`]). A profile is
//! its `profiles` row merged with its pending deltas ([`Profile::merge`] is associative and
//! commutative, so the order of the pending rows does not matter); [`ProfileStore::get_profile`]
//! reads both in one statement. Folding moves pending deltas into `profiles` and deletes
//! them in one transaction, so every read sees each delta exactly once.

use std::collections::BTreeMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use crm_core::{CustomerId, Profile, ProfileStore, Result, TenantId};
use tokio_postgres::Row;

use crate::codec::{
    copy_target, corrupt, id_bytes, json, micros, opt_from_micros, to_json, unstage,
};
use crate::interactions::not_found;
use crate::{storage, PostgresStore};

/// Columns of `profiles` and of `profile_deltas`, in the order [`decode_profile`] reads.
const PROFILE_COLUMNS: &str = "customer_id, interaction_count, first_contact_at, \
    last_contact_at, last_inbound_at, last_outbound_at, purchase_count, first_purchase_at, \
    last_purchase_at, complaint_count, service_request_count, revenue, channel_counts, \
    last_contact_by";
const DELTA_COLUMNS: &str = "tenant_id, customer_id, interaction_count, first_contact_at, \
    last_contact_at, last_inbound_at, last_outbound_at, purchase_count, first_purchase_at, \
    last_purchase_at, complaint_count, service_request_count, revenue, channel_counts, \
    last_contact_by";
const UPDATE_PROFILES: &str = "UPDATE profiles p SET interaction_count = u.ic, \
    first_contact_at = u.fc, last_contact_at = u.lc, last_inbound_at = u.li, \
    last_outbound_at = u.lo, purchase_count = u.pc, first_purchase_at = u.fp, \
    last_purchase_at = u.lp, complaint_count = u.cc, service_request_count = u.sr, \
    revenue = u.rev, channel_counts = u.ch, last_contact_by = u.lcb \
    FROM UNNEST($2::bytea[], $3::int8[], $4::int8[], $5::int8[], $6::int8[], $7::int8[], \
    $8::int8[], $9::int8[], $10::int8[], $11::int8[], $12::int8[], $13::text[], $14::text[], \
    $15::bytea[]) AS u(id, ic, fc, lc, li, lo, pc, fp, lp, cc, sr, rev, ch, lcb) \
    WHERE p.tenant_id = $1 AND p.customer_id = u.id";

/// First key of the advisory lock that makes folds of one tenant take turns (the second is
/// a hash of the tenant).
const FOLD_LOCK: i32 = 0x6372_6d66; // "crmf"
/// Customers folded per transaction.
const FOLD_CHUNK: i64 = 5_000;

fn decode_profile(r: &Row) -> Result<(CustomerId, Profile)> {
    let count = |i: usize| u64::try_from(r.get::<_, i64>(i)).map_err(|_| corrupt("negative count"));
    let id = CustomerId::from_bytes(id_bytes(r.get(0))?);
    Ok((
        id,
        Profile {
            interaction_count: count(1)?,
            first_contact_at: opt_from_micros(r.get(2))?,
            last_contact_at: opt_from_micros(r.get(3))?,
            last_inbound_at: opt_from_micros(r.get(4))?,
            last_outbound_at: opt_from_micros(r.get(5))?,
            purchase_count: count(6)?,
            first_purchase_at: opt_from_micros(r.get(7))?,
            last_purchase_at: opt_from_micros(r.get(8))?,
            complaint_count: count(9)?,
            service_request_count: count(10)?,
            revenue: json(r.get::<_, &str>(11), "profile revenue")?,
            channel_counts: json(r.get::<_, &str>(12), "profile channel counts")?,
            last_contact_by: crm_core::ports::stored::unpack_contacts(
                crate::BACKEND,
                r.get::<_, &[u8]>(13),
            )?,
        },
    ))
}

/// A profile in its column encoding (counts as `int8`, instants as microseconds, maps as
/// JSON text, the last contact per user packed).
struct Encoded {
    id: Vec<u8>,
    counts: [i64; 4],
    instants: [Option<i64>; 6],
    revenue: String,
    channels: String,
    contacts: Vec<u8>,
}

impl Encoded {
    fn new(id: CustomerId, p: &Profile) -> Result<Encoded> {
        let count = |n: u64| i64::try_from(n).map_err(|_| corrupt("count beyond int8"));
        let at = |t: Option<DateTime<Utc>>| t.map(micros);
        Ok(Encoded {
            id: id.as_bytes().to_vec(),
            counts: [
                count(p.interaction_count)?,
                count(p.purchase_count)?,
                count(p.complaint_count)?,
                count(p.service_request_count)?,
            ],
            instants: [
                at(p.first_contact_at),
                at(p.last_contact_at),
                at(p.last_inbound_at),
                at(p.last_outbound_at),
                at(p.first_purchase_at),
                at(p.last_purchase_at),
            ],
            revenue: to_json(&p.revenue)?,
            channels: to_json(&p.channel_counts)?,
            contacts: crm_core::ports::stored::pack_contacts(&p.last_contact_by),
        })
    }
}

/// Appends one pending delta per customer, in the caller's transaction.
pub(crate) async fn copy_deltas(
    tx: &deadpool_postgres::Transaction<'_>,
    tenant: &[u8],
    deltas: &BTreeMap<CustomerId, Profile>,
    rls: bool,
) -> Result<()> {
    use tokio_postgres::binary_copy::BinaryCopyInWriter;
    use tokio_postgres::types::{ToSql, Type};
    if deltas.is_empty() {
        return Ok(());
    }
    let (b, i, t) = (Type::BYTEA, Type::INT8, Type::TEXT);
    let types = [
        b.clone(),
        b.clone(),
        i.clone(),
        i.clone(),
        i.clone(),
        i.clone(),
        i.clone(),
        i.clone(),
        i.clone(),
        i.clone(),
        i.clone(),
        i,
        t.clone(),
        t,
        b,
    ];
    let target = copy_target(tx, "profile_deltas", rls).await?;
    let sink = tx
        .copy_in(&format!(
            "COPY {target} ({DELTA_COLUMNS}) FROM STDIN (FORMAT binary)"
        ))
        .await
        .map_err(storage)?;
    let mut writer = std::pin::pin!(BinaryCopyInWriter::new(sink, &types));
    for (customer, delta) in deltas {
        let e = Encoded::new(*customer, delta)?;
        let [ic, pc, cc, sr] = &e.counts;
        let [fc, lc, li, lo, fp, lp] = &e.instants;
        let row: [&(dyn ToSql + Sync); 15] = [
            &tenant,
            &e.id,
            ic,
            fc,
            lc,
            li,
            lo,
            pc,
            fp,
            lp,
            cc,
            sr,
            &e.revenue,
            &e.channels,
            &e.contacts,
        ];
        writer.as_mut().write(&row).await.map_err(storage)?;
    }
    writer.finish().await.map_err(storage)?;
    unstage(tx, "profile_deltas", DELTA_COLUMNS, rls)
        .await
        .map_err(storage)
}

/// The stored profile rows of `ids` (pending deltas not included), locked for update in
/// key order.
pub(crate) async fn lock_profiles(
    tx: &deadpool_postgres::Transaction<'_>,
    tenant: &[u8],
    ids: &[CustomerId],
) -> Result<BTreeMap<CustomerId, Profile>> {
    let ids: Vec<Vec<u8>> = ids.iter().map(|c| c.as_bytes().to_vec()).collect();
    let stored = tx
        .query(
            &format!(
                "SELECT {PROFILE_COLUMNS} FROM profiles WHERE tenant_id = $1 \
                 AND customer_id = ANY($2) ORDER BY customer_id FOR UPDATE"
            ),
            &[&tenant, &ids],
        )
        .await
        .map_err(storage)?;
    stored.iter().map(decode_profile).collect()
}

/// Writes stored profile rows (one statement over arrays).
pub(crate) async fn update_profiles(
    tx: &deadpool_postgres::Transaction<'_>,
    tenant: &[u8],
    profiles: &BTreeMap<CustomerId, Profile>,
) -> Result<()> {
    let rows = profiles
        .iter()
        .map(|(id, p)| Encoded::new(*id, p))
        .collect::<Result<Vec<_>>>()?;
    let ids: Vec<&[u8]> = rows.iter().map(|e| e.id.as_slice()).collect();
    let count = |i: usize| rows.iter().map(|e| e.counts[i]).collect::<Vec<i64>>();
    let at = |i: usize| {
        rows.iter()
            .map(|e| e.instants[i])
            .collect::<Vec<Option<i64>>>()
    };
    let revenue: Vec<&str> = rows.iter().map(|e| e.revenue.as_str()).collect();
    let channels: Vec<&str> = rows.iter().map(|e| e.channels.as_str()).collect();
    let contacts: Vec<&[u8]> = rows.iter().map(|e| e.contacts.as_slice()).collect();
    // Columns in UPDATE_PROFILES order: ic, fc, lc, li, lo, pc, fp, lp, cc, sr.
    tx.execute(
        UPDATE_PROFILES,
        &[
            &tenant,
            &ids,
            &count(0),
            &at(0),
            &at(1),
            &at(2),
            &at(3),
            &count(1),
            &at(4),
            &at(5),
            &count(2),
            &count(3),
            &revenue,
            &channels,
            &contacts,
        ],
    )
    .await
    .map_err(storage)?;
    Ok(())
}

/// Takes the tenant's fold lock for the transaction: folds (and merges) take turns.
pub(crate) async fn fold_lock(
    tx: &deadpool_postgres::Transaction<'_>,
    tenant: &[u8],
) -> Result<()> {
    tx.execute(
        "SELECT pg_advisory_xact_lock($1, hashtext(encode($2, 'hex')))",
        &[&FOLD_LOCK, &tenant],
    )
    .await
    .map_err(storage)?;
    Ok(())
}

/// Folds the pending deltas of the next [`FOLD_CHUNK`] customers after `after` (in key
/// order) in one transaction. Returns the number of deltas folded and, when customers
/// remain beyond the chunk, the last customer of the chunk.
async fn fold_chunk(
    store: &PostgresStore,
    id: TenantId,
    after: &[u8],
) -> Result<(u64, Option<Vec<u8>>)> {
    let tenant = id.as_bytes().as_slice();
    let mut client = store.client(id).await?;
    let tx = client.transaction().await.map_err(storage)?;
    fold_lock(&tx, tenant).await?;
    // The chunk is a key range of customers, bounded through the profiles' primary key.
    let last: Option<Vec<u8>> = tx
        .query_opt(
            "SELECT customer_id FROM profiles WHERE tenant_id = $1 AND customer_id > $2 \
             ORDER BY customer_id OFFSET $3 LIMIT 1",
            &[&tenant, &after, &(FOLD_CHUNK - 1)],
        )
        .await
        .map_err(storage)?
        .map(|r| r.get(0));
    // Ids are 16 bytes: 17 bytes of 0xff sort after every one of them.
    let upto = last.clone().unwrap_or_else(|| vec![0xff; 17]);
    let pending = tx
        .query(
            &format!(
                "DELETE FROM profile_deltas WHERE tenant_id = $1 AND customer_id > $2 \
                 AND customer_id <= $3 RETURNING {PROFILE_COLUMNS}"
            ),
            &[&tenant, &after, &upto],
        )
        .await
        .map_err(storage)?;
    if pending.is_empty() {
        return Ok((0, last));
    }
    let mut deltas: BTreeMap<CustomerId, Profile> = BTreeMap::new();
    for r in &pending {
        let (id, delta) = decode_profile(r)?;
        deltas.entry(id).or_default().merge(&delta)?;
    }
    let ids: Vec<CustomerId> = deltas.keys().copied().collect();
    let mut profiles = lock_profiles(&tx, tenant, &ids).await?;
    for (id, delta) in &deltas {
        profiles
            .get_mut(id)
            .ok_or_else(|| not_found(*id))?
            .merge(delta)?;
    }
    update_profiles(&tx, tenant, &profiles).await?;
    tx.commit().await.map_err(storage)?;
    Ok((pending.len() as u64, last))
}

impl PostgresStore {
    /// Folds the tenant's pending profile deltas into its stored profiles; returns how many
    /// deltas were folded.
    ///
    /// Reads are right without it ([`ProfileStore::get_profile`] merges pending deltas, and
    /// every segment query folds first), so call it when convenient: after a large import,
    /// or from a periodic job, to keep the pending rows few. Works in transactions of
    /// a few thousand customers each; concurrent folds of one tenant take turns, and batches
    /// logged meanwhile are left for the next fold.
    pub async fn fold_profiles(&self, tenant: TenantId) -> Result<u64> {
        let t = tenant.as_bytes().to_vec();
        let pending = self
            .client(tenant)
            .await?
            .query_opt(
                "SELECT 1 FROM profile_deltas WHERE tenant_id = $1 LIMIT 1",
                &[&t],
            )
            .await
            .map_err(storage)?;
        if pending.is_none() {
            return Ok(0);
        }
        let (mut folded, mut after) = (0, Vec::new());
        loop {
            let (n, more) = self.retrying(|| fold_chunk(self, tenant, &after)).await?;
            folded += n;
            match more {
                Some(last) => after = last,
                None => return Ok(folded),
            }
        }
    }
}

#[async_trait]
impl ProfileStore for PostgresStore {
    async fn get_profile(&self, tenant: TenantId, customer: CustomerId) -> Result<Profile> {
        // The stored row and the pending deltas in one statement (one snapshot: a concurrent
        // fold is seen wholly or not at all).
        let client = self.client(tenant).await?;
        let rows = client
            .query(
                &format!(
                    "SELECT {PROFILE_COLUMNS} FROM profiles \
                     WHERE tenant_id = $1 AND customer_id = $2 \
                     UNION ALL SELECT {PROFILE_COLUMNS} FROM profile_deltas \
                     WHERE tenant_id = $1 AND customer_id = $2"
                ),
                &[&tenant.as_bytes().to_vec(), &customer.as_bytes().to_vec()],
            )
            .await
            .map_err(storage)?;
        if rows.is_empty() {
            return Err(not_found(customer));
        }
        let mut profile = Profile::default();
        for r in &rows {
            profile.merge(&decode_profile(r)?.1)?;
        }
        Ok(profile)
    }

    async fn get_profiles(
        &self,
        tenant: TenantId,
        ids: &[CustomerId],
    ) -> Result<BTreeMap<CustomerId, Profile>> {
        crm_core::ports::check_ids(ids.len())?;
        let mut profiles: BTreeMap<CustomerId, Profile> = BTreeMap::new();
        if ids.is_empty() {
            return Ok(profiles);
        }
        // As `get_profile`, for many customers: stored rows and pending deltas in one
        // statement.
        let client = self.client(tenant).await?;
        let list: Vec<&[u8]> = ids.iter().map(|id| id.as_bytes().as_slice()).collect();
        let rows = client
            .query(
                &format!(
                    "SELECT {PROFILE_COLUMNS} FROM profiles \
                     WHERE tenant_id = $1 AND customer_id = ANY($2::bytea[]) \
                     UNION ALL SELECT {PROFILE_COLUMNS} FROM profile_deltas \
                     WHERE tenant_id = $1 AND customer_id = ANY($2::bytea[])"
                ),
                &[&tenant.as_bytes().as_slice(), &list],
            )
            .await
            .map_err(storage)?;
        for r in &rows {
            let (customer, part) = decode_profile(r)?;
            profiles.entry(customer).or_default().merge(&part)?;
        }
        Ok(profiles)
    }
}

/// The job runner's job ([`crm_core::service::Jobs`]) that folds each tenant's pending
/// profile deltas ([`PostgresStore::fold_profiles`]), so they stay few. Named
/// `fold_profiles`; its count is `folded`.
#[derive(Clone, Debug)]
pub struct FoldJob {
    store: std::sync::Arc<PostgresStore>,
}

impl FoldJob {
    /// Folds through `store` (a store on the same database as the runner's).
    pub fn new(store: std::sync::Arc<PostgresStore>) -> Self {
        FoldJob { store }
    }
}

#[async_trait]
impl crm_core::service::Job for FoldJob {
    fn name(&self) -> &str {
        "fold_profiles"
    }

    async fn run(
        &self,
        tenant: &crm_core::TenantCrm,
        _now: DateTime<Utc>,
    ) -> Result<crm_core::service::JobCounts> {
        let folded = self.store.fold_profiles(tenant.id()).await?;
        Ok(crm_core::service::JobCounts::from([("folded", folded)]))
    }
}
