//! Customer records, their search index tables and ownership history.

use std::collections::BTreeMap;

use async_trait::async_trait;
use crm_core::WriteOptions;
use crm_core::{
    Cursor, Customer, CustomerId, CustomerQuery, CustomerStore, Error, OwnershipChange, Page,
    PageRequest, Result, TenantId, UserId,
};
use rusqlite::types::ToSql;
use rusqlite::{params, Connection, OptionalExtension, Transaction, TransactionBehavior};

use crate::codec::{from_micros, id_bytes, json, micros, to_json, write_error};
use crate::outbox::write_outbox;
use crate::{found, storage, SqliteStore};
use crm_core::audit::AuditEntry;
use crm_core::handover::HandOver;
use crm_core::merge::CustomerMerge;

const INSERT_CUSTOMER: &str = "INSERT INTO customers \
    (tenant_id, id, name_key, lifecycle, owner_id, version, record) \
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)";
const UPDATE_CUSTOMER: &str = "UPDATE customers SET name_key = ?3, lifecycle = ?4, owner_id = ?5, \
    version = ?6, record = ?7 WHERE tenant_id = ?1 AND id = ?2 AND version = ?8";
const INSERT_PROFILE: &str = "INSERT INTO profiles (tenant_id, customer_id) VALUES (?1, ?2)";
const SELECT_RECORD: &str = "SELECT record FROM customers WHERE tenant_id = ?1 AND id = ?2";
const SELECT_VERSION: &str = "SELECT version FROM customers WHERE tenant_id = ?1 AND id = ?2";
const INSERT_EMAIL: &str =
    "INSERT OR IGNORE INTO customer_emails (tenant_id, email_key, customer_id) VALUES (?1, ?2, ?3)";
const INSERT_PHONE: &str =
    "INSERT OR IGNORE INTO customer_phones (tenant_id, phone, customer_id) VALUES (?1, ?2, ?3)";
const INSERT_TAG: &str =
    "INSERT INTO customer_tags (tenant_id, tag, customer_id) VALUES (?1, ?2, ?3)";
const INSERT_EXTERNAL: &str = "INSERT INTO customer_external_ids \
    (tenant_id, source, external_id, customer_id) VALUES (?1, ?2, ?3, ?4)";
const DELETE_INDEX_ROWS: [&str; 4] = [
    "DELETE FROM customer_emails WHERE tenant_id = ?1 AND customer_id = ?2",
    "DELETE FROM customer_phones WHERE tenant_id = ?1 AND customer_id = ?2",
    "DELETE FROM customer_tags WHERE tenant_id = ?1 AND customer_id = ?2",
    "DELETE FROM customer_external_ids WHERE tenant_id = ?1 AND customer_id = ?2",
];
const INSERT_OWNERSHIP: &str = "INSERT INTO ownership_changes \
    (tenant_id, customer_id, version, from_owner, to_owner, changed_by, reason, at) \
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)";
const SELECT_OWNERSHIP: &str = "SELECT version, from_owner, to_owner, changed_by, reason, at \
    FROM ownership_changes WHERE tenant_id = ?1 AND customer_id = ?2 ORDER BY version DESC";

// Listing: fixed fragments joined by AND; every value is a bound parameter.
const LIST_HEAD: &str = "SELECT c.record FROM customers c WHERE c.tenant_id = ?";
const LIST_AFTER: &str = " AND c.id > ?";
const LIST_NAME: &str = " AND substr(c.name_key, 1, length(?)) = ?";
const LIST_OWNER: &str = " AND c.owner_id = ?";
const LIST_LIFECYCLE: &str = " AND c.lifecycle = ?";
const LIST_EMAIL: &str = " AND EXISTS (SELECT 1 FROM customer_emails x \
    WHERE x.tenant_id = c.tenant_id AND x.email_key = ? AND x.customer_id = c.id)";
const LIST_PHONE: &str = " AND EXISTS (SELECT 1 FROM customer_phones x \
    WHERE x.tenant_id = c.tenant_id AND x.phone = ? AND x.customer_id = c.id)";
const LIST_TAG: &str = " AND EXISTS (SELECT 1 FROM customer_tags x \
    WHERE x.tenant_id = c.tenant_id AND x.tag = ? AND x.customer_id = c.id)";
const LIST_EXTERNAL: &str = " AND EXISTS (SELECT 1 FROM customer_external_ids x \
    WHERE x.tenant_id = c.tenant_id AND x.source = ? AND x.external_id = ? \
    AND x.customer_id = c.id)";
const LIST_TAIL: &str = " ORDER BY c.id LIMIT ?";

fn not_found(id: CustomerId) -> Error {
    Error::not_found("customer", id)
}

fn index_rows(tx: &Transaction<'_>, tenant: &[u8], c: &Customer) -> Result<()> {
    let id = c.id.as_bytes().as_slice();
    for e in &c.emails {
        tx.prepare_cached(INSERT_EMAIL)
            .and_then(|mut s| s.execute(params![tenant, e.search_key(), id]))
            .map_err(storage)?;
    }
    for p in &c.phones {
        tx.prepare_cached(INSERT_PHONE)
            .and_then(|mut s| s.execute(params![tenant, p.as_str(), id]))
            .map_err(storage)?;
    }
    for t in &c.tags {
        tx.prepare_cached(INSERT_TAG)
            .and_then(|mut s| s.execute(params![tenant, t.as_str(), id]))
            .map_err(storage)?;
    }
    for r in &c.external_ids {
        tx.prepare_cached(INSERT_EXTERNAL)
            .and_then(|mut s| s.execute(params![tenant, r.source().as_str(), r.external_id(), id]))
            .map_err(|e| write_error(e, "customer", || format!("external id {r}")))?;
    }
    Ok(())
}

/// Replaces a customer's record if it is stored at `expected_version` (else
/// [`Error::stale_write`]), with its search index rows rebuilt.
/// Records an ownership transfer, inside the caller's transaction.
fn insert_ownership(tx: &Transaction<'_>, tenant: &[u8], o: &OwnershipChange) -> Result<()> {
    tx.prepare_cached(INSERT_OWNERSHIP)
        .and_then(|mut s| {
            s.execute(params![
                tenant,
                o.customer.as_bytes().as_slice(),
                o.version as i64,
                o.from.as_ref().map(|u| u.as_bytes().as_slice()),
                o.to.as_ref().map(|u| u.as_bytes().as_slice()),
                o.changed_by.as_ref().map(|u| u.as_bytes().as_slice()),
                o.reason,
                micros(o.at)
            ])
        })
        .map_err(|e| write_error(e, "ownership change", || format!("version {}", o.version)))?;
    Ok(())
}

fn replace_record(
    tx: &Transaction<'_>,
    tenant: &[u8],
    c: &Customer,
    record: &str,
    expected_version: u64,
) -> Result<()> {
    let id = c.id.as_bytes().as_slice();
    let changed = tx
        .prepare_cached(UPDATE_CUSTOMER)
        .and_then(|mut s| {
            s.execute(params![
                tenant,
                id,
                c.name.search_key(),
                c.lifecycle.as_str(),
                c.owner.as_ref().map(|o| o.as_bytes().as_slice()),
                c.version as i64,
                record,
                expected_version as i64
            ])
        })
        .map_err(storage)?;
    if changed == 0 {
        let actual: Option<i64> = tx
            .prepare_cached(SELECT_VERSION)
            .and_then(|mut s| s.query_row(params![tenant, id], |r| r.get(0)).optional())
            .map_err(storage)?;
        return Err(Error::stale_write(
            "customer",
            c.id,
            expected_version,
            actual.map(|v| v as u64),
        ));
    }
    for sql in DELETE_INDEX_ROWS {
        tx.prepare_cached(sql)
            .and_then(|mut s| s.execute(params![tenant, id]))
            .map_err(storage)?;
    }
    index_rows(tx, tenant, c)
}

fn opt_user(bytes: Option<Vec<u8>>) -> Result<Option<UserId>> {
    bytes
        .map(|b| id_bytes(b).map(UserId::from_bytes))
        .transpose()
}

fn read_customer(conn: &Connection, tenant: &[u8], id: CustomerId) -> Result<Customer> {
    let record: Option<String> = conn
        .prepare_cached(SELECT_RECORD)
        .and_then(|mut s| {
            s.query_row(params![tenant, id.as_bytes().as_slice()], |r| r.get(0))
                .optional()
        })
        .map_err(storage)?;
    let record = record.ok_or_else(|| not_found(id))?;
    json(&record, "customer record")
}

fn customer_exists(conn: &Connection, tenant: &[u8], id: CustomerId) -> Result<bool> {
    conn.prepare_cached(SELECT_VERSION)
        .and_then(|mut s| s.exists(params![tenant, id.as_bytes().as_slice()]))
        .map_err(storage)
}

/// A customer's ownership transfers, newest first (none for an unknown customer).
fn read_ownership(conn: &Connection, t: &[u8], id: CustomerId) -> Result<Vec<OwnershipChange>> {
    type Row = (
        i64,
        Option<Vec<u8>>,
        Option<Vec<u8>>,
        Option<Vec<u8>>,
        Option<String>,
        i64,
    );
    let rows: Vec<Row> = conn
        .prepare_cached(SELECT_OWNERSHIP)
        .and_then(|mut s| {
            s.query_map(params![t, id.as_bytes().as_slice()], |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                ))
            })?
            .collect()
        })
        .map_err(storage)?;
    rows.into_iter()
        .map(|(version, from, to, by, reason, at)| {
            Ok(OwnershipChange {
                customer: id,
                from: opt_user(from)?,
                to: opt_user(to)?,
                changed_by: opt_user(by)?,
                reason,
                at: from_micros(at)?,
                version: version as u64,
            })
        })
        .collect()
}

#[async_trait]
impl CustomerStore for SqliteStore {
    async fn insert_customer(
        &self,
        tenant: TenantId,
        customer: &Customer,
        options: WriteOptions,
    ) -> Result<()> {
        self.insert_customers(tenant, vec![customer.clone()], options)
            .await
    }

    async fn insert_customers(
        &self,
        tenant: TenantId,
        customers: Vec<Customer>,
        options: WriteOptions,
    ) -> Result<()> {
        let outbox = options.into_outbox()?;
        let records = customers.iter().map(to_json).collect::<Result<Vec<_>>>()?;
        self.write(move |conn| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(storage)?;
            let t = tenant.as_bytes().as_slice();
            for (c, record) in customers.iter().zip(records) {
                let id = c.id.as_bytes().as_slice();
                tx.prepare_cached(INSERT_CUSTOMER)
                    .and_then(|mut s| {
                        s.execute(params![
                            t,
                            id,
                            c.name.search_key(),
                            c.lifecycle.as_str(),
                            c.owner.as_ref().map(|o| o.as_bytes().as_slice()),
                            c.version as i64,
                            record
                        ])
                    })
                    .map_err(|e| write_error(e, "customer", || format!("id {}", c.id)))?;
                tx.prepare_cached(INSERT_PROFILE)
                    .and_then(|mut s| s.execute(params![t, id]))
                    .map_err(storage)?;
                index_rows(&tx, t, c)?;
                crate::audit::record(&tx, t, &AuditEntry::created(c))?;
            }
            write_outbox(&tx, tenant, &outbox)?;
            tx.commit().map_err(storage)
        })
        .await
    }

    async fn get_customer(&self, tenant: TenantId, id: CustomerId) -> Result<Customer> {
        self.read(move |conn| read_customer(conn, tenant.as_bytes(), id))
            .await
    }

    async fn update_customer(
        &self,
        tenant: TenantId,
        customer: &Customer,
        expected_version: u64,
        options: WriteOptions,
    ) -> Result<()> {
        let (audit, ownership, outbox) = options.into_parts()?;
        let c = customer.clone();
        let record = to_json(&c)?;
        self.write(move |conn| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(storage)?;
            let t = tenant.as_bytes().as_slice();
            replace_record(&tx, t, &c, &record, expected_version)?;
            for entry in &audit {
                crate::audit::record(&tx, t, entry)?;
            }
            if let Some(o) = &ownership {
                insert_ownership(&tx, t, o)?;
            }
            write_outbox(&tx, tenant, &outbox)?;
            tx.commit().map_err(storage)
        })
        .await
    }

    async fn list_customers(
        &self,
        tenant: TenantId,
        query: &CustomerQuery,
        page: &PageRequest,
    ) -> Result<Page<Customer>> {
        page.validate()?;
        let after = page.after.as_ref().map(Cursor::as_customer).transpose()?;
        let limit = page.limit;
        let mut sql = String::from(LIST_HEAD);
        let mut args: Vec<Box<dyn ToSql + Send>> = vec![Box::new(tenant.as_bytes().to_vec())];
        if let Some(a) = after {
            sql.push_str(LIST_AFTER);
            args.push(Box::new(a.as_bytes().to_vec()));
        }
        if let Some(p) = &query.name_prefix {
            sql.push_str(LIST_NAME);
            args.push(Box::new(p.to_lowercase()));
            args.push(Box::new(p.to_lowercase()));
        }
        if let Some(o) = query.owner {
            sql.push_str(LIST_OWNER);
            args.push(Box::new(o.as_bytes().to_vec()));
        }
        if let Some(l) = query.lifecycle {
            sql.push_str(LIST_LIFECYCLE);
            args.push(Box::new(l.as_str()));
        }
        if let Some(e) = &query.email {
            sql.push_str(LIST_EMAIL);
            args.push(Box::new(e.search_key()));
        }
        if let Some(p) = &query.phone {
            sql.push_str(LIST_PHONE);
            args.push(Box::new(p.as_str().to_string()));
        }
        if let Some(t) = &query.tag {
            sql.push_str(LIST_TAG);
            args.push(Box::new(t.as_str().to_string()));
        }
        if let Some(r) = &query.external_id {
            sql.push_str(LIST_EXTERNAL);
            args.push(Box::new(r.source().as_str().to_string()));
            args.push(Box::new(r.external_id().to_string()));
        }
        sql.push_str(LIST_TAIL);
        args.push(Box::new(i64::from(limit) + 1));
        let rows = self
            .read(move |conn| {
                let mut stmt = conn.prepare_cached(&sql).map_err(storage)?;
                let refs: Vec<&dyn ToSql> = args.iter().map(|a| a.as_ref() as &dyn ToSql).collect();
                let records = stmt
                    .query_map(refs.as_slice(), |r| r.get::<_, String>(0))
                    .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
                    .map_err(storage)?;
                records
                    .iter()
                    .map(|r| json::<Customer>(r, "customer record"))
                    .collect::<Result<Vec<_>>>()
            })
            .await?;
        Ok(Page::from_overfetch(rows, limit, |c| {
            Cursor::customer(c.id)
        }))
    }

    async fn ownership_history(
        &self,
        tenant: TenantId,
        id: CustomerId,
    ) -> Result<Vec<OwnershipChange>> {
        self.read(move |conn| {
            let t = tenant.as_bytes().as_slice();
            if !customer_exists(conn, t, id)? {
                return Err(not_found(id));
            }
            read_ownership(conn, t, id)
        })
        .await
    }

    async fn get_customers(&self, tenant: TenantId, ids: &[CustomerId]) -> Result<Vec<Customer>> {
        let read = self
            .read_each(ids, move |conn, id| {
                found(read_customer(conn, tenant.as_bytes(), id))
            })
            .await?;
        Ok(read.into_iter().map(|(_, c)| c).collect())
    }

    async fn ownership_histories(
        &self,
        tenant: TenantId,
        ids: &[CustomerId],
    ) -> Result<BTreeMap<CustomerId, Vec<OwnershipChange>>> {
        let read = self
            .read_each(ids, move |conn, id| {
                let history = read_ownership(conn, tenant.as_bytes(), id)?;
                Ok((!history.is_empty()).then_some(history))
            })
            .await?;
        Ok(read.into_iter().collect())
    }

    async fn merge_customers(
        &self,
        tenant: TenantId,
        merge: &CustomerMerge,
        options: WriteOptions,
    ) -> Result<()> {
        let outbox = options.into_outbox()?;
        let m = merge.clone();
        let record = to_json(&m.survivor)?;
        self.write(move |conn| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(storage)?;
            let t = tenant.as_bytes().as_slice();
            crate::merge::check_versions(&tx, t, &m)?;
            // The merged customers' index rows go first, so their external ids are free to
            // move to the survivor's record.
            for (id, _) in &m.merged {
                for sql in DELETE_INDEX_ROWS {
                    tx.prepare_cached(sql)
                        .and_then(|mut s| s.execute(params![t, id.as_bytes().as_slice()]))
                        .map_err(storage)?;
                }
            }
            replace_record(&tx, t, &m.survivor, &record, m.survivor_version)?;
            crate::merge::move_rows(&tx, t, &m)?;
            for entry in &m.audit {
                crate::audit::record(&tx, t, entry)?;
            }
            write_outbox(&tx, tenant, &outbox)?;
            tx.commit().map_err(storage)
        })
        .await
    }

    async fn erase_customer(
        &self,
        tenant: TenantId,
        erased: &Customer,
        expected_version: u64,
        options: WriteOptions,
    ) -> Result<()> {
        let (audit, outbox) = options.into_audited()?;
        let c = erased.clone();
        let record = to_json(&c)?;
        self.write(move |conn| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(storage)?;
            let t = tenant.as_bytes().as_slice();
            replace_record(&tx, t, &c, &record, expected_version)?;
            crate::privacy::erase_rows(&tx, t, c.id)?;
            // The history of the customer, and of customers merged into it.
            for id in crate::merge::merged_into(&tx, t, c.id)?
                .into_iter()
                .chain([c.id])
            {
                crate::privacy::erase_history(&tx, t, id)?;
                crate::audit::scrub(&tx, t, id)?;
            }
            for entry in &audit {
                crate::audit::record(&tx, t, entry)?;
            }
            write_outbox(&tx, tenant, &outbox)?;
            tx.commit().map_err(storage)
        })
        .await
    }

    async fn audit_history(
        &self,
        tenant: TenantId,
        customer: CustomerId,
        page: &PageRequest,
    ) -> Result<Page<AuditEntry>> {
        let before = crm_core::audit::page_before(page)?;
        let limit = page.limit;
        let items = self
            .read(move |conn| {
                crate::audit::history(
                    conn,
                    tenant.as_bytes(),
                    customer,
                    before,
                    i64::from(limit) + 1,
                )
            })
            .await?;
        Ok(Page::from_overfetch(items, limit, |e| {
            Cursor::audit(e.version)
        }))
    }

    async fn hand_over(
        &self,
        tenant: TenantId,
        plan: &HandOver,
        options: WriteOptions,
    ) -> Result<()> {
        let crm_sql::EncodedHandOver {
            customers,
            cases,
            tasks,
            grants,
        } = crm_sql::encode_hand_over(plan)?;
        let outbox = options.into_outbox()?;
        self.write(move |conn| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(storage)?;
            let t = tenant.as_bytes().as_slice();
            for (h, record) in &customers {
                replace_record(&tx, t, &h.customer, record, h.expected_version)?;
                crate::audit::record(&tx, t, &h.audit)?;
                insert_ownership(&tx, t, &h.ownership)?;
            }
            for (case, record, expected) in &cases {
                crate::cases::replace(&tx, t, case, record, *expected)?;
            }
            for (task, record, expected) in &tasks {
                crate::tasks::replace(&tx, t, task, record, *expected)?;
            }
            for (from, grant, record) in &grants {
                let (by, at) = (grant.granted_by, grant.granted_at);
                crate::access::revoke(&tx, t, grant.customer, *from, by, at)?;
                crate::access::put(&tx, t, grant, record)?;
            }
            write_outbox(&tx, tenant, &outbox)?;
            tx.commit().map_err(storage)
        })
        .await
    }

    async fn redirect(&self, tenant: TenantId, id: CustomerId) -> Result<Option<CustomerId>> {
        self.read(move |conn| crate::merge::redirect(conn, tenant.as_bytes(), id))
            .await
    }
}
