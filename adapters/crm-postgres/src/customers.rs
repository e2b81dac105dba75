//! Customer records, their search index tables and ownership history.

use std::collections::BTreeMap;

use async_trait::async_trait;
use crm_core::ports::check_ids;
use crm_core::WriteOptions;
use crm_core::{
    Cursor, Customer, CustomerId, CustomerQuery, CustomerStore, Error, OwnershipChange, Page,
    PageRequest, Result, TenantId, UserId,
};
use tokio_postgres::types::ToSql;
use tokio_postgres::{Row, Transaction};

use crate::codec::{from_micros, id_bytes, json, micros, to_json, write_error};
use crate::outbox::write_outbox;
use crate::{storage, PostgresStore};
use crm_core::audit::AuditEntry;
use crm_core::handover::HandOver;
use crm_core::merge::CustomerMerge;

const UPDATE_CUSTOMER: &str = "UPDATE customers SET name_key = $3, lifecycle = $4, owner_id = $5, \
    version = $6, record = $7::text::jsonb WHERE tenant_id = $1 AND id = $2 AND version = $8";
const SELECT_RECORD: &str = "SELECT record::text FROM customers WHERE tenant_id = $1 AND id = $2";
const SELECT_VERSION: &str = "SELECT version FROM customers WHERE tenant_id = $1 AND id = $2";
const INSERT_EMAIL: &str = "INSERT INTO customer_emails (tenant_id, email_key, customer_id) \
    VALUES ($1, $2, $3) ON CONFLICT DO NOTHING";
const INSERT_PHONE: &str = "INSERT INTO customer_phones (tenant_id, phone, customer_id) \
    VALUES ($1, $2, $3) ON CONFLICT DO NOTHING";
const INSERT_TAG: &str =
    "INSERT INTO customer_tags (tenant_id, tag, customer_id) VALUES ($1, $2, $3)";
const INSERT_EXTERNAL: &str = "INSERT INTO customer_external_ids \
    (tenant_id, source, external_id, customer_id) VALUES ($1, $2, $3, $4)";
const DELETE_INDEX_ROWS: [&str; 4] = [
    "DELETE FROM customer_emails WHERE tenant_id = $1 AND customer_id = $2",
    "DELETE FROM customer_phones WHERE tenant_id = $1 AND customer_id = $2",
    "DELETE FROM customer_tags WHERE tenant_id = $1 AND customer_id = $2",
    "DELETE FROM customer_external_ids WHERE tenant_id = $1 AND customer_id = $2",
];
const INSERT_OWNERSHIP: &str = "INSERT INTO ownership_changes \
    (tenant_id, customer_id, version, from_owner, to_owner, changed_by, reason, at) \
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";
const SELECT_OWNERSHIP: &str = "SELECT version, from_owner, to_owner, changed_by, reason, at \
    FROM ownership_changes WHERE tenant_id = $1 AND customer_id = $2 ORDER BY version DESC";

/// Records of many customers (`$2`: their ids), in one statement.
const SELECT_RECORDS: &str =
    "SELECT record::text FROM customers WHERE tenant_id = $1 AND id = ANY($2::bytea[])";
/// The transfers of many stored customers (`$2`: their ids), each customer's newest first,
/// in one statement (one snapshot); the customer id comes first, then [`SELECT_OWNERSHIP`]'s
/// columns.
const SELECT_OWNERSHIPS: &str = "SELECT o.customer_id, o.version, o.from_owner, o.to_owner, \
    o.changed_by, o.reason, o.at FROM ownership_changes o \
    WHERE o.tenant_id = $1 AND o.customer_id = ANY($2::bytea[]) AND EXISTS (SELECT 1 \
    FROM customers c WHERE c.tenant_id = o.tenant_id AND c.id = o.customer_id) \
    ORDER BY o.customer_id, o.version DESC";

/// Ids as one `bytea[]` parameter.
fn id_list(ids: &[CustomerId]) -> Vec<&[u8]> {
    ids.iter().map(|id| id.as_bytes().as_slice()).collect()
}

/// One row of [`SELECT_OWNERSHIP`]'s columns, starting at column `first`.
fn ownership_change(customer: CustomerId, r: &Row, first: usize) -> Result<OwnershipChange> {
    Ok(OwnershipChange {
        customer,
        from: opt_user(r.get(first + 1))?,
        to: opt_user(r.get(first + 2))?,
        changed_by: opt_user(r.get(first + 3))?,
        reason: r.get(first + 4),
        at: from_micros(r.get(first + 5))?,
        version: r.get::<_, i64>(first) as u64,
    })
}

fn not_found(id: CustomerId) -> Error {
    Error::not_found("customer", id)
}

fn b(id: &[u8; 16]) -> Vec<u8> {
    id.to_vec()
}

async fn index_rows(tx: &Transaction<'_>, tenant: &[u8], c: &Customer) -> Result<()> {
    let id = b(c.id.as_bytes());
    for e in &c.emails {
        tx.execute(INSERT_EMAIL, &[&tenant, &e.search_key(), &id])
            .await
            .map_err(storage)?;
    }
    for p in &c.phones {
        tx.execute(INSERT_PHONE, &[&tenant, &p.as_str(), &id])
            .await
            .map_err(storage)?;
    }
    for t in &c.tags {
        tx.execute(INSERT_TAG, &[&tenant, &t.as_str(), &id])
            .await
            .map_err(storage)?;
    }
    for r in &c.external_ids {
        tx.execute(
            INSERT_EXTERNAL,
            &[&tenant, &r.source().as_str(), &r.external_id(), &id],
        )
        .await
        .map_err(|e| write_error(e, "customer", || format!("external id {r}")))?;
    }
    Ok(())
}

/// Replaces a customer's record if it is stored at `expected_version` (else
/// [`Error::stale_write`]), with its search index rows rebuilt.
/// Records an ownership transfer, inside the caller's transaction.
async fn insert_ownership(tx: &Transaction<'_>, tenant: &[u8], o: &OwnershipChange) -> Result<()> {
    let (from, to, by) = (
        o.from.map(|u| b(u.as_bytes())),
        o.to.map(|u| b(u.as_bytes())),
        o.changed_by.map(|u| b(u.as_bytes())),
    );
    tx.execute(
        INSERT_OWNERSHIP,
        &[
            &tenant,
            &b(o.customer.as_bytes()),
            &(o.version as i64),
            &from,
            &to,
            &by,
            &o.reason,
            &micros(o.at),
        ],
    )
    .await
    .map_err(|e| write_error(e, "ownership change", || format!("version {}", o.version)))?;
    Ok(())
}

async fn replace_record(
    tx: &Transaction<'_>,
    tenant: &[u8],
    c: &Customer,
    record: &str,
    expected_version: u64,
) -> Result<()> {
    let id = b(c.id.as_bytes());
    let owner = c.owner.map(|o| b(o.as_bytes()));
    let changed = tx
        .execute(
            UPDATE_CUSTOMER,
            &[
                &tenant,
                &id,
                &c.name.search_key(),
                &c.lifecycle.as_str(),
                &owner,
                &(c.version as i64),
                &record,
                &(expected_version as i64),
            ],
        )
        .await
        .map_err(storage)?;
    if changed == 0 {
        let actual = tx
            .query_opt(SELECT_VERSION, &[&tenant, &id])
            .await
            .map_err(storage)?
            .map(|r| r.get::<_, i64>(0) as u64);
        return Err(Error::stale_write(
            "customer",
            c.id,
            expected_version,
            actual,
        ));
    }
    for sql in DELETE_INDEX_ROWS {
        tx.execute(sql, &[&tenant, &id]).await.map_err(storage)?;
    }
    index_rows(tx, tenant, c).await
}

fn opt_user(bytes: Option<Vec<u8>>) -> Result<Option<UserId>> {
    bytes
        .map(|b| id_bytes(b).map(UserId::from_bytes))
        .transpose()
}

pub(crate) async fn customer_exists(
    client: &impl deadpool_postgres::GenericClient,
    tenant: &[u8],
    id: CustomerId,
) -> Result<bool> {
    let row = client
        .query_opt(
            "SELECT 1 FROM profiles WHERE tenant_id = $1 AND customer_id = $2",
            &[&tenant, &b(id.as_bytes())],
        )
        .await
        .map_err(storage)?;
    Ok(row.is_some())
}

#[async_trait]
impl CustomerStore for PostgresStore {
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
        let created: Vec<AuditEntry> = customers.iter().map(AuditEntry::created).collect();
        // One statement per table for the whole batch, over arrays.
        let t = b(tenant.as_bytes());
        let mut ids = Vec::with_capacity(customers.len());
        let (mut names, mut stages, mut owners, mut versions, mut records) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
        let (mut email_ids, mut emails, mut phone_ids, mut phones, mut tag_ids, mut tags) = (
            Vec::new(),
            Vec::new(),
            Vec::new(),
            Vec::new(),
            Vec::new(),
            Vec::new(),
        );
        let (mut ref_ids, mut sources, mut externals) = (Vec::new(), Vec::new(), Vec::new());
        for c in &customers {
            let id = b(c.id.as_bytes());
            names.push(c.name.search_key());
            stages.push(c.lifecycle.as_str());
            owners.push(c.owner.map(|o| b(o.as_bytes())));
            versions.push(c.version as i64);
            records.push(to_json(c)?);
            for e in &c.emails {
                email_ids.push(id.clone());
                emails.push(e.search_key());
            }
            for p in &c.phones {
                phone_ids.push(id.clone());
                phones.push(p.as_str().to_string());
            }
            for tag in &c.tags {
                tag_ids.push(id.clone());
                tags.push(tag.as_str().to_string());
            }
            for r in &c.external_ids {
                ref_ids.push(id.clone());
                sources.push(r.source().as_str().to_string());
                externals.push(r.external_id().to_string());
            }
            ids.push(id);
        }
        self.retrying(|| async {
            let mut client = self.client(tenant).await?;
            let tx = client.transaction().await.map_err(storage)?;
            tx.execute(
                "INSERT INTO customers (tenant_id, id, name_key, lifecycle, owner_id, version, record) \
                 SELECT $1, u.id, u.n, u.l, u.o, u.v, u.r::jsonb FROM UNNEST($2::bytea[], $3::text[], $4::text[], $5::bytea[], $6::int8[], $7::text[]) AS u(id, n, l, o, v, r)",
                &[&t, &ids, &names, &stages, &owners, &versions, &records],
            )
            .await
            .map_err(|e| write_error(e, "customer", || "id already used".to_string()))?;
            tx.execute("INSERT INTO profiles (tenant_id, customer_id) SELECT $1, * FROM UNNEST($2::bytea[])", &[&t, &ids])
                .await
                .map_err(storage)?;
            tx.execute(
                "INSERT INTO customer_emails (tenant_id, customer_id, email_key) SELECT $1, * FROM UNNEST($2::bytea[], $3::text[]) ON CONFLICT DO NOTHING",
                &[&t, &email_ids, &emails],
            )
            .await
            .map_err(storage)?;
            tx.execute(
                "INSERT INTO customer_phones (tenant_id, customer_id, phone) SELECT $1, * FROM UNNEST($2::bytea[], $3::text[]) ON CONFLICT DO NOTHING",
                &[&t, &phone_ids, &phones],
            )
            .await
            .map_err(storage)?;
            tx.execute(
                "INSERT INTO customer_tags (tenant_id, customer_id, tag) SELECT $1, * FROM UNNEST($2::bytea[], $3::text[])",
                &[&t, &tag_ids, &tags],
            )
            .await
            .map_err(storage)?;
            tx.execute(
                "INSERT INTO customer_external_ids (tenant_id, customer_id, source, external_id) SELECT $1, * FROM UNNEST($2::bytea[], $3::text[], $4::text[])",
                &[&t, &ref_ids, &sources, &externals],
            )
            .await
            .map_err(|e| write_error(e, "customer", || "external id already used".to_string()))?;
            crate::audit::record(&tx, &t, &created).await?;
            write_outbox(&tx, tenant, &outbox).await?;
            tx.commit().await.map_err(storage)
        })
        .await
    }

    async fn get_customer(&self, tenant: TenantId, id: CustomerId) -> Result<Customer> {
        let client = self.client(tenant).await?;
        let row = client
            .query_opt(SELECT_RECORD, &[&b(tenant.as_bytes()), &b(id.as_bytes())])
            .await
            .map_err(storage)?
            .ok_or_else(|| not_found(id))?;
        json(row.get::<_, &str>(0), "customer record")
    }

    async fn update_customer(
        &self,
        tenant: TenantId,
        customer: &Customer,
        expected_version: u64,
        options: WriteOptions,
    ) -> Result<()> {
        let (audit, ownership, outbox) = options.into_parts()?;
        let record = to_json(customer)?;
        let t = b(tenant.as_bytes());
        let c = customer;
        self.retrying(|| async {
            let mut client = self.client(tenant).await?;
            let tx = client.transaction().await.map_err(storage)?;
            replace_record(&tx, &t, c, &record, expected_version).await?;
            crate::audit::record(&tx, &t, audit.as_slice()).await?;
            if let Some(o) = &ownership {
                insert_ownership(&tx, &t, o).await?;
            }
            write_outbox(&tx, tenant, &outbox).await?;
            tx.commit().await.map_err(storage)
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
        let mut args: Vec<Box<dyn ToSql + Sync + Send>> = vec![Box::new(b(tenant.as_bytes()))];
        let mut sql = String::from("SELECT c.record::text FROM customers c WHERE c.tenant_id = $1");
        let mut arg = |sql: &mut String, fragment: &str, v: Box<dyn ToSql + Sync + Send>| {
            args.push(v);
            sql.push_str(&fragment.replace('#', &format!("${}", args.len())));
        };
        if let Some(a) = after {
            arg(&mut sql, " AND c.id > #", Box::new(b(a.as_bytes())));
        }
        if let Some(p) = &query.name_prefix {
            arg(
                &mut sql,
                " AND left(c.name_key, char_length(#::text)) = ",
                Box::new(p.to_lowercase()),
            );
            arg(&mut sql, "#", Box::new(p.to_lowercase()));
        }
        if let Some(o) = query.owner {
            arg(&mut sql, " AND c.owner_id = #", Box::new(b(o.as_bytes())));
        }
        if let Some(l) = query.lifecycle {
            arg(
                &mut sql,
                " AND c.lifecycle = #",
                Box::new(l.as_str().to_string()),
            );
        }
        if let Some(e) = &query.email {
            arg(&mut sql, " AND EXISTS (SELECT 1 FROM customer_emails x WHERE x.tenant_id = c.tenant_id AND x.email_key = # AND x.customer_id = c.id)", Box::new(e.search_key()));
        }
        if let Some(p) = &query.phone {
            arg(&mut sql, " AND EXISTS (SELECT 1 FROM customer_phones x WHERE x.tenant_id = c.tenant_id AND x.phone = # AND x.customer_id = c.id)", Box::new(p.as_str().to_string()));
        }
        if let Some(t) = &query.tag {
            arg(&mut sql, " AND EXISTS (SELECT 1 FROM customer_tags x WHERE x.tenant_id = c.tenant_id AND x.tag = # AND x.customer_id = c.id)", Box::new(t.as_str().to_string()));
        }
        if let Some(r) = &query.external_id {
            arg(&mut sql, " AND EXISTS (SELECT 1 FROM customer_external_ids x WHERE x.tenant_id = c.tenant_id AND x.source = #", Box::new(r.source().as_str().to_string()));
            arg(
                &mut sql,
                " AND x.external_id = # AND x.customer_id = c.id)",
                Box::new(r.external_id().to_string()),
            );
        }
        arg(
            &mut sql,
            " ORDER BY c.id LIMIT #",
            Box::new(i64::from(page.limit) + 1),
        );
        let client = self.client(tenant).await?;
        let refs: Vec<&(dyn ToSql + Sync)> = args
            .iter()
            .map(|a| a.as_ref() as &(dyn ToSql + Sync))
            .collect();
        let rows = client.query(&sql, &refs).await.map_err(storage)?;
        let customers = rows
            .iter()
            .map(|r| json::<Customer>(r.get::<_, &str>(0), "customer record"))
            .collect::<Result<Vec<_>>>()?;
        Ok(Page::from_overfetch(customers, page.limit, |c| {
            Cursor::customer(c.id)
        }))
    }

    async fn ownership_history(
        &self,
        tenant: TenantId,
        id: CustomerId,
    ) -> Result<Vec<OwnershipChange>> {
        let client = self.client(tenant).await?;
        let t = b(tenant.as_bytes());
        if !customer_exists(&client, &t, id).await? {
            return Err(not_found(id));
        }
        let rows = client
            .query(SELECT_OWNERSHIP, &[&t, &b(id.as_bytes())])
            .await
            .map_err(storage)?;
        rows.iter().map(|r| ownership_change(id, r, 0)).collect()
    }

    async fn get_customers(&self, tenant: TenantId, ids: &[CustomerId]) -> Result<Vec<Customer>> {
        check_ids(ids.len())?;
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let client = self.client(tenant).await?;
        let rows = client
            .query(SELECT_RECORDS, &[&b(tenant.as_bytes()), &id_list(ids)])
            .await
            .map_err(storage)?;
        rows.iter()
            .map(|r| json(r.get::<_, &str>(0), "customer record"))
            .collect()
    }

    async fn ownership_histories(
        &self,
        tenant: TenantId,
        ids: &[CustomerId],
    ) -> Result<BTreeMap<CustomerId, Vec<OwnershipChange>>> {
        check_ids(ids.len())?;
        let mut histories: BTreeMap<CustomerId, Vec<OwnershipChange>> = BTreeMap::new();
        if ids.is_empty() {
            return Ok(histories);
        }
        let client = self.client(tenant).await?;
        let rows = client
            .query(SELECT_OWNERSHIPS, &[&b(tenant.as_bytes()), &id_list(ids)])
            .await
            .map_err(storage)?;
        for r in &rows {
            let customer = CustomerId::from_bytes(id_bytes(r.get(0))?);
            let change = ownership_change(customer, r, 1)?;
            histories.entry(customer).or_default().push(change);
        }
        Ok(histories)
    }

    async fn merge_customers(
        &self,
        tenant: TenantId,
        merge: &CustomerMerge,
        options: WriteOptions,
    ) -> Result<()> {
        let outbox = options.into_outbox()?;
        let record = to_json(&merge.survivor)?;
        let t = b(tenant.as_bytes());
        self.retrying(|| async {
            let mut client = self.client(tenant).await?;
            let tx = client.transaction().await.map_err(storage)?;
            // No batch adds rows for these customers while they move.
            crate::merge::merge_lock(&tx, &t, true).await?;
            crate::merge::check_versions(&tx, &t, merge).await?;
            // The merged customers' index rows go first, so their external ids are free to
            // move to the survivor's record.
            for (id, _) in &merge.merged {
                for sql in DELETE_INDEX_ROWS {
                    tx.execute(sql, &[&t, &b(id.as_bytes())])
                        .await
                        .map_err(storage)?;
                }
            }
            replace_record(&tx, &t, &merge.survivor, &record, merge.survivor_version).await?;
            crate::merge::move_rows(&tx, tenant, merge).await?;
            crate::audit::record(&tx, &t, &merge.audit).await?;
            write_outbox(&tx, tenant, &outbox).await?;
            tx.commit().await.map_err(storage)
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
        let record = to_json(erased)?;
        let t = b(tenant.as_bytes());
        let c = erased;
        self.retrying(|| async {
            let mut client = self.client(tenant).await?;
            let tx = client.transaction().await.map_err(storage)?;
            replace_record(&tx, &t, c, &record, expected_version).await?;
            crate::privacy::erase_rows(&tx, &t, c.id).await?;
            // The history of the customer, and of customers merged into it.
            for id in crate::merge::merged_into(&tx, &t, c.id)
                .await?
                .into_iter()
                .chain([c.id])
            {
                crate::privacy::erase_history(&tx, &t, id).await?;
                crate::audit::scrub(&tx, &t, id).await?;
            }
            crate::audit::record(&tx, &t, &audit).await?;
            write_outbox(&tx, tenant, &outbox).await?;
            tx.commit().await.map_err(storage)
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
        let client = self.client(tenant).await?;
        let items = crate::audit::history(
            &client,
            tenant.as_bytes(),
            customer,
            before,
            i64::from(page.limit) + 1,
        )
        .await?;
        Ok(Page::from_overfetch(items, page.limit, |e| {
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
        let t = b(tenant.as_bytes());
        self.retrying(|| async {
            let mut client = self.client(tenant).await?;
            let tx = client.transaction().await.map_err(storage)?;
            for (h, record) in &customers {
                replace_record(&tx, &t, &h.customer, record, h.expected_version).await?;
                crate::audit::record(&tx, &t, std::slice::from_ref(&h.audit)).await?;
                insert_ownership(&tx, &t, &h.ownership).await?;
            }
            for (case, record, expected) in &cases {
                crate::cases::replace(&tx, &t, case, record, *expected).await?;
            }
            for (task, record, expected) in &tasks {
                crate::tasks::replace(&tx, &t, task, record, *expected).await?;
            }
            for (from, grant, record) in &grants {
                let (by, at) = (grant.granted_by, grant.granted_at);
                crate::access::revoke(&tx, &t, grant.customer, *from, by, at).await?;
                crate::access::put(&tx, &t, grant, record).await?;
            }
            write_outbox(&tx, tenant, &outbox).await?;
            tx.commit().await.map_err(storage)
        })
        .await
    }

    async fn redirect(&self, tenant: TenantId, id: CustomerId) -> Result<Option<CustomerId>> {
        let client = self.client(tenant).await?;
        let row = client
            .query_opt(
                "SELECT to_id FROM customer_redirects WHERE tenant_id = $1 AND from_id = $2",
                &[&b(tenant.as_bytes()), &b(id.as_bytes())],
            )
            .await
            .map_err(storage)?;
        row.map(|r| id_bytes(r.get(0)).map(CustomerId::from_bytes))
            .transpose()
    }
}
