//! Segments on PostgreSQL: rules compiled to SQL, definitions and memberships.
//!
//! A rule becomes a `WHERE` clause over the customer, its profile, its value scores and its
//! value classes. The SQL text is built only from fixed fragments; every value (literals,
//! the evaluation time, JSON paths, the currency) is a bound, explicitly typed parameter.
//! Texts compare with `COLLATE "C"` (by bytes, as in memory), whatever the database's
//! collation. Money compares in double precision (exact up to 15 significant digits).

use std::collections::BTreeSet;

use async_trait::async_trait;
use chrono::{DateTime, NaiveTime, Utc};
use crm_core::segment::{
    AttrType, Builtin, FieldSchema, FieldSource, Literal, MembershipChange, Operand, Rule, Segment,
};
use crm_core::{
    AttrKey, Cursor, CustomerId, Error, Page, PageRequest, Result, SegmentId, SegmentStore,
    TenantId,
};
use deadpool_postgres::GenericClient;
use rust_decimal::prelude::ToPrimitive;
use tokio_postgres::types::ToSql;

use crate::codec::{id_bytes, json, to_json, write_error};
use crate::customers::customer_exists;
use crate::outbox::write_outbox;
use crate::{storage, PostgresStore};
use crm_core::notify::events::membership_events;

const FROM: &str = " FROM customers c \
    JOIN profiles p ON p.tenant_id = c.tenant_id AND p.customer_id = c.id \
    LEFT JOIN value_scores v ON v.tenant_id = c.tenant_id AND v.customer_id = c.id \
    LEFT JOIN value_classes k ON k.tenant_id = c.tenant_id AND k.customer_id = c.id \
    WHERE c.tenant_id = $1";
const DAY_MICROS: &str = "86400000000";

type Param = Box<dyn ToSql + Sync + Send>;

struct Compiler<'a> {
    schema: &'a FieldSchema,
    now: i64,
    out: String,
    params: Vec<Param>,
}

fn date_micros(d: chrono::NaiveDate) -> i64 {
    d.and_time(NaiveTime::MIN).and_utc().timestamp_micros()
}

impl Compiler<'_> {
    fn bind(&mut self, v: Param, ty: &str) {
        self.params.push(v);
        self.out.push_str(&format!("${}::{ty}", self.params.len()));
    }

    fn push(&mut self, s: &str) {
        self.out.push_str(s);
    }

    fn literal(&mut self, l: &Literal) {
        match l {
            Literal::Text(t) => self.bind(Box::new(t.clone()), "text"),
            Literal::Number(n) => self.bind(Box::new(n.to_f64()), "float8"),
            Literal::Bool(b) => self.bind(Box::new(*b), "bool"),
            Literal::Date(d) => self.bind(Box::new(date_micros(*d)), "int8"),
            Literal::List(_) => self.push("NULL"),
        }
    }

    fn path(&mut self, parts: &[&str]) {
        let v: Vec<String> = parts.iter().map(|s| s.to_string()).collect();
        self.bind(Box::new(v), "text[]");
    }

    fn operand(&mut self, o: &Operand) {
        self.push("(");
        match o {
            Operand::Literal(l) => self.literal(l),
            Operand::Now { offset } => {
                self.bind(Box::new(self.now.saturating_add(offset.micros())), "int8")
            }
            Operand::Field(name) => match self.schema.resolve(name) {
                Some((FieldSource::Builtin(b), _)) => self.builtin(b),
                Some((FieldSource::Attr(key, ty), _)) => self.attr(&key, ty),
                None => self.push("NULL"),
            },
        }
        self.push(")");
    }

    fn days_since(&mut self, column: &str) {
        self.push("(");
        self.bind(Box::new(self.now), "int8");
        self.push(" - ");
        self.push(column);
        self.push(") / ");
        self.push(DAY_MICROS);
    }

    fn text(&mut self, expr: &str) {
        self.push(expr);
        self.push(" COLLATE \"C\"");
    }

    fn builtin(&mut self, b: Builtin) {
        match b {
            Builtin::Name => self.text("(c.record ->> 'name')"),
            Builtin::Kind => self.text("(c.record ->> 'kind')"),
            Builtin::Lifecycle => self.text("c.lifecycle"),
            Builtin::Owner => self.text("(c.record ->> 'owner')"),
            Builtin::Team => self.text("(c.record ->> 'team')"),
            Builtin::CreatedAt => self.push(
                "(extract(epoch FROM (c.record ->> 'created_at')::timestamptz) * 1000000)::int8",
            ),
            Builtin::UpdatedAt => self.push(
                "(extract(epoch FROM (c.record ->> 'updated_at')::timestamptz) * 1000000)::int8",
            ),
            Builtin::ConsentEmail => self.push("(c.record -> 'consent' ->> 'email')::bool"),
            Builtin::ConsentSms => self.push("(c.record -> 'consent' ->> 'sms')::bool"),
            Builtin::ConsentPhone => self.push("(c.record -> 'consent' ->> 'phone')::bool"),
            Builtin::InteractionCount => self.push("p.interaction_count"),
            Builtin::PurchaseCount => self.push("p.purchase_count"),
            Builtin::ComplaintCount => self.push("p.complaint_count"),
            Builtin::ServiceRequestCount => self.push("p.service_request_count"),
            Builtin::FirstContactAt => self.push("p.first_contact_at"),
            Builtin::LastContactAt => self.push("p.last_contact_at"),
            Builtin::FirstPurchaseAt => self.push("p.first_purchase_at"),
            Builtin::LastPurchaseAt => self.push("p.last_purchase_at"),
            Builtin::DaysSinceLastPurchase => self.days_since("p.last_purchase_at"),
            Builtin::DaysSinceLastContact => self.days_since("p.last_contact_at"),
            Builtin::DaysSinceFirstPurchase => self.days_since("p.first_purchase_at"),
            Builtin::Revenue => {
                self.push("COALESCE((p.revenue::jsonb ->> ");
                self.bind(Box::new(self.schema.currency.code().to_string()), "text");
                self.push(")::float8, 0)");
            }
            Builtin::PAlive => self.push("v.p_alive"),
            Builtin::ExpectedPurchases90d => self.push("v.expected_purchases_90d"),
            Builtin::PredictedClv => {
                self.push("CASE WHEN v.currency = ");
                self.bind(Box::new(self.schema.currency.code().to_string()), "text");
                self.push(" THEN v.predicted_clv::float8 END");
            }
            Builtin::RScore => self.push("k.r"),
            Builtin::FScore => self.push("k.f"),
            Builtin::MScore => self.push("k.m"),
            Builtin::RfmSegment => self.text("k.rfm_segment"),
            Builtin::AbcClass => self.text("k.abc_class"),
            _ => self.push("NULL"),
        }
    }

    fn attr(&mut self, key: &str, ty: AttrType) {
        if AttrKey::parse(key).is_err() || ty == AttrType::TextList {
            self.push("NULL");
            return;
        }
        let tag = match ty {
            AttrType::Text => "text",
            AttrType::Number => "number",
            AttrType::Bool => "bool",
            AttrType::Date => "date",
            AttrType::Money => "money",
            AttrType::TextList => "text_list",
        };
        self.push("CASE WHEN (c.record #>> ");
        self.path(&["attributes", key, "type"]);
        self.push(") = ");
        self.bind(Box::new(tag.to_string()), "text");
        if ty == AttrType::Money {
            self.push(" AND (c.record #>> ");
            self.path(&["attributes", key, "value", "currency"]);
            self.push(") = ");
            self.bind(Box::new(self.schema.currency.code().to_string()), "text");
        }
        self.push(" THEN ");
        match ty {
            AttrType::Number => {
                self.push("(c.record #>> ");
                self.path(&["attributes", key, "value"]);
                self.push(")::float8");
            }
            AttrType::Money => {
                self.push("(c.record #>> ");
                self.path(&["attributes", key, "value", "amount"]);
                self.push(")::float8");
            }
            AttrType::Bool => {
                self.push("(c.record #>> ");
                self.path(&["attributes", key, "value"]);
                self.push(")::bool");
            }
            AttrType::Date => {
                self.push("(extract(epoch FROM (c.record #>> ");
                self.path(&["attributes", key, "value"]);
                self.push(")::date::timestamp) * 1000000)::int8");
            }
            _ => {
                self.push("(c.record #>> ");
                self.path(&["attributes", key, "value"]);
                self.push(") COLLATE \"C\"");
            }
        }
        self.push(" END");
    }

    fn list_contains(&mut self, list: &Operand, needle: &Operand) {
        self.push("CASE WHEN ");
        self.operand(needle);
        self.push(" IS NULL THEN NULL ELSE ");
        match list {
            Operand::Field(name) => match self.schema.resolve(name) {
                Some((FieldSource::Builtin(Builtin::Tags), _)) => {
                    self.push("EXISTS (SELECT 1 FROM customer_tags t WHERE t.tenant_id = c.tenant_id AND t.customer_id = c.id AND t.tag = ");
                    self.operand(needle);
                    self.push(")");
                }
                Some((FieldSource::Attr(key, AttrType::TextList), _))
                    if AttrKey::parse(&key).is_ok() =>
                {
                    self.push("((c.record #>> ");
                    self.path(&["attributes", &key, "type"]);
                    self.push(") IS NOT DISTINCT FROM 'text_list' AND EXISTS (SELECT 1 FROM jsonb_array_elements_text(CASE WHEN jsonb_typeof(c.record #> ");
                    self.path(&["attributes", &key, "value"]);
                    self.push(") = 'array' THEN c.record #> ");
                    self.path(&["attributes", &key, "value"]);
                    self.push(" ELSE '[]'::jsonb END) j(v) WHERE j.v = ");
                    self.operand(needle);
                    self.push("))");
                }
                _ => self.push("false"),
            },
            _ => self.push("NULL"),
        }
        self.push(" END");
    }

    fn is_list(&self, o: &Operand) -> bool {
        matches!(o, Operand::Field(name) if matches!(
            self.schema.resolve(name),
            Some((FieldSource::Builtin(Builtin::Tags), _) | (FieldSource::Attr(_, AttrType::TextList), _))
        ))
    }

    /// Terms joined by `op`, grouped in halves so the SQL parser's expression tree is
    /// logarithmic in the chain's length (SQLite refuses trees deeper than 1,000); an
    /// empty chain is `empty` (true for `and`, false for `or`).
    fn chain(&mut self, terms: &[Rule], op: &str, empty: &str) {
        const FLAT: usize = 8;
        match terms.len() {
            0 => self.push(empty),
            n if n <= FLAT => {
                for (i, t) in terms.iter().enumerate() {
                    if i > 0 {
                        self.push(op);
                    }
                    self.rule(t);
                }
            }
            n => {
                let (a, b) = terms.split_at(n / 2);
                self.push("(");
                self.chain(a, op, empty);
                self.push(")");
                self.push(op);
                self.push("(");
                self.chain(b, op, empty);
                self.push(")");
            }
        }
    }

    fn rule(&mut self, r: &Rule) {
        self.push("(");
        match r {
            Rule::And { rules } => self.chain(rules, " AND ", "1 = 1"),
            Rule::Or { rules } => self.chain(rules, " OR ", "1 = 0"),
            Rule::Not { rule } => {
                self.push("NOT ");
                self.rule(rule);
            }
            Rule::Compare { left, cmp, right } => {
                self.operand(left);
                self.push(" ");
                self.push(if cmp.symbol() == "!=" {
                    "<>"
                } else {
                    cmp.symbol()
                });
                self.push(" ");
                self.operand(right);
            }
            Rule::Between { operand, low, high } => {
                self.operand(operand);
                self.push(" BETWEEN ");
                self.operand(low);
                self.push(" AND ");
                self.operand(high);
            }
            Rule::In { item, set } => match set {
                Operand::Literal(Literal::List(items)) if items.is_empty() => self.push("false"),
                Operand::Literal(Literal::List(items)) => {
                    self.operand(item);
                    self.push(" IN (");
                    for (i, l) in items.iter().enumerate() {
                        if i > 0 {
                            self.push(", ");
                        }
                        self.literal(l);
                    }
                    self.push(")");
                }
                list => self.list_contains(list, item),
            },
            Rule::Contains { haystack, needle } if self.is_list(haystack) => {
                self.list_contains(haystack, needle)
            }
            Rule::Contains { haystack, needle } => {
                self.push("strpos(");
                self.operand(haystack);
                self.push(", ");
                self.operand(needle);
                self.push(") > 0");
            }
            Rule::StartsWith { text, prefix } => {
                self.push("left(");
                self.operand(text);
                self.push(", char_length(");
                self.operand(prefix);
                self.push(")) = ");
                self.operand(prefix);
            }
            Rule::IsNull { operand, negated } => {
                self.operand(operand);
                self.push(if *negated { " IS NOT NULL" } else { " IS NULL" });
            }
        }
        self.push(")");
    }
}

/// The query `SELECT <what> FROM ... WHERE tenant AND rule [AND c.id > after] ORDER/LIMIT`.
fn compile(
    select: &str,
    tenant: TenantId,
    rule: &Rule,
    schema: &FieldSchema,
    now: DateTime<Utc>,
) -> Result<(String, Vec<Param>)> {
    schema.check(rule)?;
    let mut c = Compiler {
        schema,
        now: now.timestamp_micros(),
        out: String::new(),
        params: vec![Box::new(tenant.as_bytes().to_vec())],
    };
    c.push(select);
    c.push(FROM);
    c.push(" AND ");
    c.rule(rule);
    Ok((c.out, c.params))
}

async fn query_ids(
    client: &impl GenericClient,
    sql: &str,
    params: &[Param],
) -> Result<Vec<CustomerId>> {
    let refs: Vec<&(dyn ToSql + Sync)> = params
        .iter()
        .map(|p| p.as_ref() as &(dyn ToSql + Sync))
        .collect();
    let rows = client.query(sql, &refs).await.map_err(storage)?;
    rows.into_iter()
        .map(|r| id_bytes(r.get(0)).map(CustomerId::from_bytes))
        .collect()
}

fn matching_sql(
    tenant: TenantId,
    rule: &Rule,
    schema: &FieldSchema,
    now: DateTime<Utc>,
    after: Option<CustomerId>,
    limit: Option<i64>,
) -> Result<(String, Vec<Param>)> {
    let (mut sql, mut params) = compile("SELECT c.id", tenant, rule, schema, now)?;
    if let Some(a) = after {
        params.push(Box::new(a.as_bytes().to_vec()));
        sql.push_str(&format!(" AND c.id > ${}", params.len()));
    }
    sql.push_str(" ORDER BY c.id");
    if let Some(l) = limit {
        params.push(Box::new(l));
        sql.push_str(&format!(" LIMIT ${}", params.len()));
    }
    Ok((sql, params))
}

async fn read_segment(
    client: &impl GenericClient,
    tenant: TenantId,
    id: SegmentId,
) -> Result<Segment> {
    let row = client
        .query_opt(
            "SELECT record::text FROM segments WHERE tenant_id = $1 AND id = $2",
            &[&tenant.as_bytes().to_vec(), &id.as_bytes().to_vec()],
        )
        .await
        .map_err(storage)?
        .ok_or_else(|| Error::not_found("segment", id))?;
    json(row.get(0), "segment")
}

async fn members(
    client: &impl GenericClient,
    tenant: TenantId,
    id: SegmentId,
) -> Result<BTreeSet<CustomerId>> {
    let rows = client
        .query(
            "SELECT customer_id FROM segment_members WHERE tenant_id = $1 AND segment_id = $2",
            &[&tenant.as_bytes().to_vec(), &id.as_bytes().to_vec()],
        )
        .await
        .map_err(storage)?;
    rows.into_iter()
        .map(|r| id_bytes(r.get(0)).map(CustomerId::from_bytes))
        .collect()
}

async fn replace_members(
    client: &impl GenericClient,
    tenant: TenantId,
    id: SegmentId,
    now: BTreeSet<CustomerId>,
) -> Result<MembershipChange> {
    let before = members(client, tenant, id).await?;
    let change = MembershipChange {
        entered: now.difference(&before).copied().collect(),
        left: before.difference(&now).copied().collect(),
        members: now.len() as u64,
    };
    let (t, s) = (tenant.as_bytes().to_vec(), id.as_bytes().to_vec());
    let left: Vec<Vec<u8>> = change.left.iter().map(|c| c.as_bytes().to_vec()).collect();
    let entered: Vec<Vec<u8>> = change
        .entered
        .iter()
        .map(|c| c.as_bytes().to_vec())
        .collect();
    client
        .execute("DELETE FROM segment_members WHERE tenant_id = $1 AND segment_id = $2 AND customer_id = ANY($3)", &[&t, &s, &left])
        .await
        .map_err(storage)?;
    client
        .execute("INSERT INTO segment_members (tenant_id, segment_id, customer_id) SELECT $1, $2, * FROM UNNEST($3::bytea[])", &[&t, &s, &entered])
        .await
        .map_err(storage)?;
    Ok(change)
}

#[async_trait]
impl SegmentStore for PostgresStore {
    async fn find_matching(
        &self,
        tenant: TenantId,
        rule: &Rule,
        schema: &FieldSchema,
        now: DateTime<Utc>,
        page: &PageRequest,
    ) -> Result<Page<CustomerId>> {
        // Rules read profiles: fold pending deltas first.
        self.fold_profiles(tenant).await?;
        page.validate()?;
        let after = page.after.as_ref().map(Cursor::as_customer).transpose()?;
        let (sql, params) = matching_sql(
            tenant,
            rule,
            schema,
            now,
            after,
            Some(i64::from(page.limit) + 1),
        )?;
        let client = self.client(tenant).await?;
        let rows = query_ids(&client, &sql, &params).await?;
        Ok(Page::from_overfetch(rows, page.limit, |id| {
            Cursor::customer(*id)
        }))
    }

    async fn count_matching(
        &self,
        tenant: TenantId,
        rule: &Rule,
        schema: &FieldSchema,
        now: DateTime<Utc>,
    ) -> Result<u64> {
        // Rules read profiles: fold pending deltas first.
        self.fold_profiles(tenant).await?;
        let (sql, params) = compile("SELECT count(*)", tenant, rule, schema, now)?;
        let client = self.client(tenant).await?;
        let refs: Vec<&(dyn ToSql + Sync)> = params
            .iter()
            .map(|p| p.as_ref() as &(dyn ToSql + Sync))
            .collect();
        let row = client.query_one(&sql, &refs).await.map_err(storage)?;
        Ok(row.get::<_, i64>(0) as u64)
    }

    async fn save_segment(&self, tenant: TenantId, segment: &Segment) -> Result<()> {
        let record = to_json(segment)?;
        let client = self.client(tenant).await?;
        client
            .execute(
                "INSERT INTO segments (tenant_id, id, name, record) VALUES ($1, $2, $3, $4::text::jsonb)",
                &[&tenant.as_bytes().to_vec(), &segment.id.as_bytes().to_vec(), &segment.name.as_str(), &record],
            )
            .await
            .map_err(|e| write_error(e, "segment", || format!("id {} or name {:?}", segment.id, segment.name.as_str())))?;
        Ok(())
    }

    async fn get_segment(&self, tenant: TenantId, id: SegmentId) -> Result<Segment> {
        let client = self.client(tenant).await?;
        read_segment(&client, tenant, id).await
    }

    async fn list_segments(&self, tenant: TenantId) -> Result<Vec<Segment>> {
        let client = self.client(tenant).await?;
        let rows = client
            .query("SELECT record::text FROM segments WHERE tenant_id = $1 ORDER BY name COLLATE \"C\"", &[&tenant.as_bytes().to_vec()])
            .await
            .map_err(storage)?;
        rows.iter().map(|r| json(r.get(0), "segment")).collect()
    }

    async fn refresh_segment(
        &self,
        tenant: TenantId,
        id: SegmentId,
        schema: &FieldSchema,
        now: DateTime<Utc>,
        events_at: Option<DateTime<Utc>>,
    ) -> Result<MembershipChange> {
        // Rules read profiles: fold pending deltas first.
        self.fold_profiles(tenant).await?;
        self.retrying(|| async {
            let mut client = self.client(tenant).await?;
            let tx = client.transaction().await.map_err(storage)?;
            tx.execute(
                "SELECT 1 FROM segments WHERE tenant_id = $1 AND id = $2 FOR UPDATE",
                &[&tenant.as_bytes().to_vec(), &id.as_bytes().to_vec()],
            )
            .await
            .map_err(storage)?;
            let segment = read_segment(&tx, tenant, id).await?;
            let rule = segment.rule().ok_or_else(|| {
                Error::validation("segment", "a static segment has no rule to refresh")
            })?;
            let (sql, params) = matching_sql(tenant, rule, schema, now, None, None)?;
            let now_members: BTreeSet<CustomerId> =
                query_ids(&tx, &sql, &params).await?.into_iter().collect();
            let change = replace_members(&tx, tenant, id, now_members).await?;
            if let Some(at) = events_at {
                write_outbox(&tx, tenant, &membership_events(id, &change, at)?).await?;
            }
            tx.commit().await.map_err(storage)?;
            Ok(change)
        })
        .await
    }

    async fn change_static_members(
        &self,
        tenant: TenantId,
        id: SegmentId,
        add: Vec<CustomerId>,
        remove: Vec<CustomerId>,
        events_at: Option<DateTime<Utc>>,
    ) -> Result<MembershipChange> {
        let t = tenant.as_bytes().to_vec();
        self.retrying(|| async {
            let mut client = self.client(tenant).await?;
            let tx = client.transaction().await.map_err(storage)?;
            tx.execute(
                "SELECT 1 FROM segments WHERE tenant_id = $1 AND id = $2 FOR UPDATE",
                &[&t, &id.as_bytes().to_vec()],
            )
            .await
            .map_err(storage)?;
            if read_segment(&tx, tenant, id).await?.rule().is_some() {
                return Err(Error::validation(
                    "segment",
                    "members of a dynamic segment follow its rule",
                ));
            }
            for c in &add {
                if !customer_exists(&tx, &t, *c).await? {
                    return Err(Error::not_found("customer", c));
                }
            }
            let mut next = members(&tx, tenant, id).await?;
            for c in &remove {
                next.remove(c);
            }
            next.extend(add.iter().copied());
            let change = replace_members(&tx, tenant, id, next).await?;
            if let Some(at) = events_at {
                write_outbox(&tx, tenant, &membership_events(id, &change, at)?).await?;
            }
            tx.commit().await.map_err(storage)?;
            Ok(change)
        })
        .await
    }

    async fn segment_members(
        &self,
        tenant: TenantId,
        id: SegmentId,
        page: &PageRequest,
    ) -> Result<Page<CustomerId>> {
        page.validate()?;
        let after = page.after.as_ref().map(Cursor::as_customer).transpose()?;
        let client = self.client(tenant).await?;
        read_segment(&client, tenant, id).await?;
        let after = after.map_or(vec![0u8; 16], |a| a.as_bytes().to_vec());
        let rows = client
            .query(
                "SELECT customer_id FROM segment_members WHERE tenant_id = $1 AND segment_id = $2 AND customer_id > $3 ORDER BY customer_id LIMIT $4",
                &[&tenant.as_bytes().to_vec(), &id.as_bytes().to_vec(), &after, &(i64::from(page.limit) + 1)],
            )
            .await
            .map_err(storage)?;
        let ids = rows
            .into_iter()
            .map(|r| id_bytes(r.get(0)).map(CustomerId::from_bytes))
            .collect::<Result<Vec<_>>>()?;
        Ok(Page::from_overfetch(ids, page.limit, |c| {
            Cursor::customer(*c)
        }))
    }

    async fn is_member(
        &self,
        tenant: TenantId,
        id: SegmentId,
        customer: CustomerId,
    ) -> Result<bool> {
        let client = self.client(tenant).await?;
        read_segment(&client, tenant, id).await?;
        let row = client
            .query_opt(
                "SELECT 1 FROM segment_members WHERE tenant_id = $1 AND segment_id = $2 AND customer_id = $3",
                &[&tenant.as_bytes().to_vec(), &id.as_bytes().to_vec(), &customer.as_bytes().to_vec()],
            )
            .await
            .map_err(storage)?;
        Ok(row.is_some())
    }

    async fn segments_of(&self, tenant: TenantId, customer: CustomerId) -> Result<Vec<SegmentId>> {
        let client = self.client(tenant).await?;
        let t = tenant.as_bytes().to_vec();
        if !customer_exists(&client, &t, customer).await? {
            return Err(Error::not_found("customer", customer));
        }
        let rows = client
            .query("SELECT segment_id FROM segment_members WHERE tenant_id = $1 AND customer_id = $2 ORDER BY segment_id", &[&t, &customer.as_bytes().to_vec()])
            .await
            .map_err(storage)?;
        rows.into_iter()
            .map(|r| id_bytes(r.get(0)).map(SegmentId::from_bytes))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_largest_rules_compile_on_a_small_stack() {
        for text in crm_core::segment::largest_rules() {
            crm_testkit::on_small_stack(move || {
                let rule = crm_core::segment::parse(&text).unwrap();
                let schema = crm_testkit::rules::segment_schema();
                let now = DateTime::<Utc>::UNIX_EPOCH;
                let sql = compile("SELECT c.id", TenantId::new(), &rule, &schema, now)
                    .unwrap()
                    .0;
                assert!(sql.len() > text.len() / 2);
            });
        }
    }
}
