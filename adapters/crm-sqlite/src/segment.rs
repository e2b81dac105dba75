//! Segments on SQLite: rules compiled to SQL, definitions and memberships.
//!
//! A rule becomes a `WHERE` clause over the customer, its profile and its value scores.
//! The SQL text is built only from fixed fragments; every value (literals, the evaluation
//! time, JSON paths of custom attributes, the currency) is a bound parameter. SQL's
//! three-valued logic is the reference semantics of `crm_core::segment`, so `and`, `or`,
//! `not` and comparisons map one to one. Money is compared in double precision (exact for
//! amounts of up to 15 significant digits).

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
use rusqlite::types::Value;
use rusqlite::{params, params_from_iter, Connection, OptionalExtension, TransactionBehavior};
use rust_decimal::prelude::ToPrimitive;

use crate::codec::{id_bytes, json, to_json, write_error};
use crate::outbox::write_outbox;
use crate::{storage, SqliteStore};
use crm_core::notify::events::membership_events;

const FROM: &str = " FROM customers c \
    JOIN profiles p ON p.tenant_id = c.tenant_id AND p.customer_id = c.id \
    LEFT JOIN value_scores v ON v.tenant_id = c.tenant_id AND v.customer_id = c.id \
    LEFT JOIN value_classes k ON k.tenant_id = c.tenant_id AND k.customer_id = c.id \
    WHERE c.tenant_id = ?";
const DAY_MICROS: &str = "86400000000";
/// Microseconds since the epoch of an RFC 3339 UTC timestamp as serde writes it in the
/// customer record (`2025-03-03T09:00:00Z`, `...:00.123456Z`); fractions beyond
/// microseconds are cut, as in memory.
const CREATED_AT: &str = "(unixepoch(substr(json_extract(c.record, '$.created_at'), 1, 19)) * 1000000 + \
    CASE WHEN substr(json_extract(c.record, '$.created_at'), 20, 1) = '.' THEN CAST(substr(substr( \
    json_extract(c.record, '$.created_at'), 21, instr(json_extract(c.record, '$.created_at'), 'Z') - 21) \
    || '000000', 1, 6) AS INTEGER) ELSE 0 END)";
const UPDATED_AT: &str = "(unixepoch(substr(json_extract(c.record, '$.updated_at'), 1, 19)) * 1000000 + \
    CASE WHEN substr(json_extract(c.record, '$.updated_at'), 20, 1) = '.' THEN CAST(substr(substr( \
    json_extract(c.record, '$.updated_at'), 21, instr(json_extract(c.record, '$.updated_at'), 'Z') - 21) \
    || '000000', 1, 6) AS INTEGER) ELSE 0 END)";

/// A compiled rule: a boolean SQL expression and its parameters, in order.
struct Sql {
    text: String,
    params: Vec<Value>,
}

struct Compiler<'a> {
    schema: &'a FieldSchema,
    now: i64,
    out: String,
    params: Vec<Value>,
}

fn date_micros(d: chrono::NaiveDate) -> i64 {
    d.and_time(NaiveTime::MIN).and_utc().timestamp_micros()
}

impl Compiler<'_> {
    fn bind(&mut self, v: Value) {
        self.out.push('?');
        self.params.push(v);
    }

    fn push(&mut self, s: &str) {
        self.out.push_str(s);
    }

    fn literal(&mut self, l: &Literal) {
        match l {
            Literal::Text(t) => self.bind(Value::Text(t.clone())),
            Literal::Number(n) => self.bind(n.to_f64().map_or(Value::Null, Value::Real)),
            Literal::Bool(b) => self.bind(Value::Integer(i64::from(*b))),
            Literal::Date(d) => self.bind(Value::Integer(date_micros(*d))),
            Literal::List(_) => self.push("NULL"),
        }
    }

    fn operand(&mut self, o: &Operand) {
        self.push("(");
        match o {
            Operand::Literal(l) => self.literal(l),
            Operand::Now { offset } => {
                self.bind(Value::Integer(self.now.saturating_add(offset.micros())))
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
        self.bind(Value::Integer(self.now));
        self.push(" - ");
        self.push(column);
        self.push(") / ");
        self.push(DAY_MICROS);
    }

    fn builtin(&mut self, b: Builtin) {
        let column = match b {
            Builtin::Name => "json_extract(c.record, '$.name')",
            Builtin::Kind => "json_extract(c.record, '$.kind')",
            Builtin::Lifecycle => "c.lifecycle",
            Builtin::Owner => "json_extract(c.record, '$.owner')",
            Builtin::Team => "json_extract(c.record, '$.team')",
            Builtin::ConsentEmail => "json_extract(c.record, '$.consent.email')",
            Builtin::ConsentSms => "json_extract(c.record, '$.consent.sms')",
            Builtin::ConsentPhone => "json_extract(c.record, '$.consent.phone')",
            Builtin::InteractionCount => "p.interaction_count",
            Builtin::PurchaseCount => "p.purchase_count",
            Builtin::ComplaintCount => "p.complaint_count",
            Builtin::ServiceRequestCount => "p.service_request_count",
            Builtin::FirstContactAt => "p.first_contact_at",
            Builtin::LastContactAt => "p.last_contact_at",
            Builtin::FirstPurchaseAt => "p.first_purchase_at",
            Builtin::LastPurchaseAt => "p.last_purchase_at",
            Builtin::CreatedAt => CREATED_AT,
            Builtin::UpdatedAt => UPDATED_AT,
            Builtin::PAlive => "v.p_alive",
            Builtin::RScore => "k.r",
            Builtin::FScore => "k.f",
            Builtin::MScore => "k.m",
            Builtin::RfmSegment => "k.rfm_segment",
            Builtin::AbcClass => "k.abc_class",
            Builtin::ExpectedPurchases90d => "v.expected_purchases_90d",
            Builtin::DaysSinceLastPurchase => return self.days_since("p.last_purchase_at"),
            Builtin::DaysSinceLastContact => return self.days_since("p.last_contact_at"),
            Builtin::DaysSinceFirstPurchase => return self.days_since("p.first_purchase_at"),
            Builtin::Revenue => {
                self.push("CAST(COALESCE(json_extract(p.revenue, ");
                self.bind(Value::Text(format!("$.{}", self.schema.currency.code())));
                self.push("), '0') AS REAL)");
                return;
            }
            Builtin::PredictedClv => {
                self.push("CASE WHEN v.currency = ");
                self.bind(Value::Text(self.schema.currency.code().to_string()));
                self.push(" THEN CAST(v.predicted_clv AS REAL) END");
                return;
            }
            // Lists are compiled by the operators that take them; anything else is unknown.
            _ => "NULL",
        };
        self.push(column);
    }

    /// `json_extract(c.record, <path>)` with the path bound.
    fn record_path(&mut self, path: String) {
        self.push("json_extract(c.record, ");
        self.bind(Value::Text(path));
        self.push(")");
    }

    fn attr(&mut self, key: &str, ty: AttrType) {
        // A key no attribute can have is never set: null, as in memory.
        if AttrKey::parse(key).is_err() {
            self.push("NULL");
            return;
        }
        let (tag, value) = match ty {
            AttrType::Text => ("text", ""),
            AttrType::Number => ("number", ""),
            AttrType::Bool => ("bool", ""),
            AttrType::Date => ("date", ""),
            AttrType::Money => ("money", ".amount"),
            AttrType::TextList => {
                self.push("NULL");
                return;
            }
        };
        self.push("CASE WHEN ");
        self.record_path(format!("$.attributes.{key}.type"));
        self.push(" = ");
        self.bind(Value::Text(tag.to_string()));
        if ty == AttrType::Money {
            self.push(" AND ");
            self.record_path(format!("$.attributes.{key}.value.currency"));
            self.push(" = ");
            self.bind(Value::Text(self.schema.currency.code().to_string()));
        }
        self.push(" THEN ");
        match ty {
            AttrType::Number | AttrType::Money => {
                self.push("CAST(");
                self.record_path(format!("$.attributes.{key}.value{value}"));
                self.push(" AS REAL)");
            }
            AttrType::Date => {
                self.push("CAST((julianday(");
                self.record_path(format!("$.attributes.{key}.value"));
                self.push(") - 2440587.5) * ");
                self.push(DAY_MICROS);
                self.push(" AS INTEGER)");
            }
            _ => self.record_path(format!("$.attributes.{key}.value")),
        }
        self.push(" END");
    }

    /// Membership of `needle` in a list field; null when the needle is null.
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
                    self.push("(COALESCE(");
                    self.record_path(format!("$.attributes.{key}.type"));
                    self.push(" = 'text_list', 0) AND EXISTS (SELECT 1 FROM json_each(c.record, ");
                    self.bind(Value::Text(format!("$.attributes.{key}.value")));
                    self.push(") j WHERE j.value = ");
                    self.operand(needle);
                    self.push("))");
                }
                _ => self.push("0"),
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
                self.push(cmp.symbol());
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
                Operand::Literal(Literal::List(items)) if items.is_empty() => self.push("0"),
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
                self.push("instr(");
                self.operand(haystack);
                self.push(", ");
                self.operand(needle);
                self.push(") > 0");
            }
            Rule::StartsWith { text, prefix } => {
                self.push("substr(");
                self.operand(text);
                self.push(", 1, length(");
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

/// Type-checks and compiles `rule` into a boolean SQL expression over `c`, `p` and `v`.
fn compile(rule: &Rule, schema: &FieldSchema, now: DateTime<Utc>) -> Result<Sql> {
    schema.check(rule)?;
    let mut c = Compiler {
        schema,
        now: now.timestamp_micros(),
        out: String::new(),
        params: Vec::new(),
    };
    c.rule(rule);
    Ok(Sql {
        text: c.out,
        params: c.params,
    })
}

/// Ids of the tenant's customers the rule selects, after `after`, at most `limit`.
fn matching_ids(
    conn: &Connection,
    tenant: TenantId,
    sql: &Sql,
    after: Option<CustomerId>,
    limit: Option<i64>,
) -> Result<Vec<CustomerId>> {
    let mut text = format!("SELECT c.id{FROM}");
    let mut args: Vec<Value> = vec![Value::Blob(tenant.as_bytes().to_vec())];
    if let Some(a) = after {
        text.push_str(" AND c.id > ?");
        args.push(Value::Blob(a.as_bytes().to_vec()));
    }
    text.push_str(" AND ");
    text.push_str(&sql.text);
    args.extend(sql.params.iter().cloned());
    text.push_str(" ORDER BY c.id");
    if let Some(l) = limit {
        text.push_str(" LIMIT ?");
        args.push(Value::Integer(l));
    }
    let mut stmt = conn.prepare(&text).map_err(storage)?;
    let rows = stmt
        .query_map(params_from_iter(args), |r| r.get::<_, Vec<u8>>(0))
        .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
        .map_err(storage)?;
    rows.into_iter()
        .map(|b| id_bytes(b).map(CustomerId::from_bytes))
        .collect()
}

fn read_segment(conn: &Connection, tenant: TenantId, id: SegmentId) -> Result<Segment> {
    let record: Option<String> = conn
        .prepare_cached("SELECT record FROM segments WHERE tenant_id = ?1 AND id = ?2")
        .and_then(|mut s| {
            s.query_row(
                params![tenant.as_bytes().as_slice(), id.as_bytes().as_slice()],
                |r| r.get(0),
            )
            .optional()
        })
        .map_err(storage)?;
    json(
        &record.ok_or_else(|| Error::not_found("segment", id))?,
        "segment",
    )
}

fn members(conn: &Connection, tenant: TenantId, id: SegmentId) -> Result<BTreeSet<CustomerId>> {
    let rows = conn
        .prepare_cached(
            "SELECT customer_id FROM segment_members WHERE tenant_id = ?1 AND segment_id = ?2",
        )
        .and_then(|mut s| {
            s.query_map(
                params![tenant.as_bytes().as_slice(), id.as_bytes().as_slice()],
                |r| r.get::<_, Vec<u8>>(0),
            )?
            .collect::<rusqlite::Result<Vec<_>>>()
        })
        .map_err(storage)?;
    rows.into_iter()
        .map(|b| id_bytes(b).map(CustomerId::from_bytes))
        .collect()
}

/// Makes the stored members of `id` equal to `now`, returning the change.
fn replace_members(
    conn: &Connection,
    tenant: TenantId,
    id: SegmentId,
    now: BTreeSet<CustomerId>,
) -> Result<MembershipChange> {
    let before = members(conn, tenant, id)?;
    let change = MembershipChange {
        entered: now.difference(&before).copied().collect(),
        left: before.difference(&now).copied().collect(),
        members: now.len() as u64,
    };
    let (t, s) = (tenant.as_bytes().as_slice(), id.as_bytes().as_slice());
    for c in &change.left {
        conn.prepare_cached("DELETE FROM segment_members WHERE tenant_id = ?1 AND segment_id = ?2 AND customer_id = ?3")
            .and_then(|mut st| st.execute(params![t, s, c.as_bytes().as_slice()]))
            .map_err(storage)?;
    }
    for c in &change.entered {
        conn.prepare_cached(
            "INSERT INTO segment_members (tenant_id, segment_id, customer_id) VALUES (?1, ?2, ?3)",
        )
        .and_then(|mut st| st.execute(params![t, s, c.as_bytes().as_slice()]))
        .map_err(storage)?;
    }
    Ok(change)
}

/// Stores the entered and left events of a membership change, when asked for.
fn write_membership_events(
    tx: &Connection,
    tenant: TenantId,
    id: SegmentId,
    change: &MembershipChange,
    events_at: Option<DateTime<Utc>>,
) -> Result<()> {
    if let Some(at) = events_at {
        write_outbox(tx, tenant, &membership_events(id, change, at)?)?;
    }
    Ok(())
}

fn customer_exists(conn: &Connection, tenant: TenantId, id: CustomerId) -> Result<bool> {
    conn.prepare_cached("SELECT 1 FROM profiles WHERE tenant_id = ?1 AND customer_id = ?2")
        .and_then(|mut s| {
            s.exists(params![
                tenant.as_bytes().as_slice(),
                id.as_bytes().as_slice()
            ])
        })
        .map_err(storage)
}

#[async_trait]
impl SegmentStore for SqliteStore {
    async fn find_matching(
        &self,
        tenant: TenantId,
        rule: &Rule,
        schema: &FieldSchema,
        now: DateTime<Utc>,
        page: &PageRequest,
    ) -> Result<Page<CustomerId>> {
        page.validate()?;
        let sql = compile(rule, schema, now)?;
        let after = page.after.as_ref().map(Cursor::as_customer).transpose()?;
        let limit = page.limit;
        let rows = self
            .read(move |conn| matching_ids(conn, tenant, &sql, after, Some(i64::from(limit) + 1)))
            .await?;
        Ok(Page::from_overfetch(rows, limit, |id| {
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
        let sql = compile(rule, schema, now)?;
        self.read(move |conn| {
            let text = format!("SELECT count(*){FROM} AND {}", sql.text);
            let mut args = vec![Value::Blob(tenant.as_bytes().to_vec())];
            args.extend(sql.params);
            conn.query_row(&text, params_from_iter(args), |r| r.get::<_, i64>(0))
                .map(|n| n as u64)
                .map_err(storage)
        })
        .await
    }

    async fn save_segment(&self, tenant: TenantId, segment: &Segment) -> Result<()> {
        let record = to_json(segment)?;
        let (id, name) = (segment.id, segment.name.to_string());
        self.write(move |conn| {
            conn.prepare_cached(
                "INSERT INTO segments (tenant_id, id, name, record) VALUES (?1, ?2, ?3, ?4)",
            )
            .and_then(|mut s| {
                s.execute(params![
                    tenant.as_bytes().as_slice(),
                    id.as_bytes().as_slice(),
                    name,
                    record
                ])
            })
            .map_err(|e| write_error(e, "segment", || format!("id {id} or name {name:?}")))?;
            Ok(())
        })
        .await
    }

    async fn get_segment(&self, tenant: TenantId, id: SegmentId) -> Result<Segment> {
        self.read(move |conn| read_segment(conn, tenant, id)).await
    }

    async fn list_segments(&self, tenant: TenantId) -> Result<Vec<Segment>> {
        self.read(move |conn| {
            let records = conn
                .prepare_cached("SELECT record FROM segments WHERE tenant_id = ?1 ORDER BY name")
                .and_then(|mut s| {
                    s.query_map(params![tenant.as_bytes().as_slice()], |r| {
                        r.get::<_, String>(0)
                    })?
                    .collect::<rusqlite::Result<Vec<_>>>()
                })
                .map_err(storage)?;
            records.iter().map(|r| json(r, "segment")).collect()
        })
        .await
    }

    async fn refresh_segment(
        &self,
        tenant: TenantId,
        id: SegmentId,
        schema: &FieldSchema,
        now: DateTime<Utc>,
        events_at: Option<DateTime<Utc>>,
    ) -> Result<MembershipChange> {
        let schema = schema.clone();
        self.write(move |conn| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(storage)?;
            let segment = read_segment(&tx, tenant, id)?;
            let rule = segment.rule().ok_or_else(|| {
                Error::validation("segment", "a static segment has no rule to refresh")
            })?;
            let sql = compile(rule, &schema, now)?;
            let now_members: BTreeSet<CustomerId> = matching_ids(&tx, tenant, &sql, None, None)?
                .into_iter()
                .collect();
            let change = replace_members(&tx, tenant, id, now_members)?;
            write_membership_events(&tx, tenant, id, &change, events_at)?;
            tx.commit().map_err(storage)?;
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
        self.write(move |conn| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(storage)?;
            if read_segment(&tx, tenant, id)?.rule().is_some() {
                return Err(Error::validation(
                    "segment",
                    "members of a dynamic segment follow its rule",
                ));
            }
            for c in &add {
                if !customer_exists(&tx, tenant, *c)? {
                    return Err(Error::not_found("customer", c));
                }
            }
            let mut next = members(&tx, tenant, id)?;
            for c in &remove {
                next.remove(c);
            }
            next.extend(add);
            let change = replace_members(&tx, tenant, id, next)?;
            write_membership_events(&tx, tenant, id, &change, events_at)?;
            tx.commit().map_err(storage)?;
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
        let limit = page.limit;
        let rows = self
            .read(move |conn| {
                read_segment(conn, tenant, id)?;
                let after = after.map_or(vec![0u8; 16], |a| a.as_bytes().to_vec());
                let rows = conn
                    .prepare_cached(
                        "SELECT customer_id FROM segment_members WHERE tenant_id = ?1 AND segment_id = ?2 \
                         AND customer_id > ?3 ORDER BY customer_id LIMIT ?4",
                    )
                    .and_then(|mut s| {
                        s.query_map(
                            params![tenant.as_bytes().as_slice(), id.as_bytes().as_slice(), after, i64::from(limit) + 1],
                            |r| r.get::<_, Vec<u8>>(0),
                        )?
                        .collect::<rusqlite::Result<Vec<_>>>()
                    })
                    .map_err(storage)?;
                rows.into_iter().map(|b| id_bytes(b).map(CustomerId::from_bytes)).collect::<Result<Vec<_>>>()
            })
            .await?;
        Ok(Page::from_overfetch(rows, limit, |c| Cursor::customer(*c)))
    }

    async fn is_member(
        &self,
        tenant: TenantId,
        id: SegmentId,
        customer: CustomerId,
    ) -> Result<bool> {
        self.read(move |conn| {
            read_segment(conn, tenant, id)?;
            conn.prepare_cached("SELECT 1 FROM segment_members WHERE tenant_id = ?1 AND segment_id = ?2 AND customer_id = ?3")
                .and_then(|mut s| s.exists(params![tenant.as_bytes().as_slice(), id.as_bytes().as_slice(), customer.as_bytes().as_slice()]))
                .map_err(storage)
        })
        .await
    }

    async fn segments_of(&self, tenant: TenantId, customer: CustomerId) -> Result<Vec<SegmentId>> {
        self.read(move |conn| {
            if !customer_exists(conn, tenant, customer)? {
                return Err(Error::not_found("customer", customer));
            }
            let rows = conn
                .prepare_cached("SELECT segment_id FROM segment_members WHERE tenant_id = ?1 AND customer_id = ?2 ORDER BY segment_id")
                .and_then(|mut s| {
                    s.query_map(params![tenant.as_bytes().as_slice(), customer.as_bytes().as_slice()], |r| r.get::<_, Vec<u8>>(0))?
                        .collect::<rusqlite::Result<Vec<_>>>()
                })
                .map_err(storage)?;
            rows.into_iter().map(|b| id_bytes(b).map(SegmentId::from_bytes)).collect()
        })
        .await
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
                let sql = compile(&rule, &schema, now).unwrap().text;
                assert!(sql.len() > text.len() / 2);
            });
        }
    }
}
