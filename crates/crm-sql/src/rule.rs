//! The segment rule compiler: a rule becomes a `WHERE` clause over the customer (`c`), its
//! profile (`p`), its value scores (`v`) and its value classes (`k`).
//!
//! The SQL text is built only from fixed fragments; every value (literals, the evaluation
//! time, JSON paths of custom attributes, the currency) is a bound [`Value`]. SQL's
//! three-valued logic is the reference semantics of `crm_core::segment`, so `and`, `or`,
//! `not` and comparisons map one to one. Money compares in double precision (exact for
//! amounts of up to 15 significant digits). What differs between databases is asked of a
//! [`Dialect`].
//!
//! The tables the text names (columns in `crm-sqlite` and `crm-postgres` migrations):
//! `customers(tenant_id, id, lifecycle, record)` with the customer as JSON,
//! `profiles(tenant_id, customer_id, interaction_count, ..., revenue)`,
//! `value_scores(tenant_id, customer_id, p_alive, expected_purchases_90d, predicted_clv,
//! currency)`, `value_classes(tenant_id, customer_id, r, f, m, rfm_segment, abc_class)` and
//! `customer_tags(tenant_id, customer_id, tag)`.

use chrono::{DateTime, NaiveDate, NaiveTime, Utc};
use crm_core::segment::{
    AttrType, Builtin, CmpOp, FieldSchema, FieldSource, Literal, Operand, Rule,
};
use crm_core::{AttrKey, CustomerId, Result, TenantId};
use rust_decimal::prelude::ToPrimitive;

/// A value bound to a placeholder. An adapter converts it to its driver's parameter type.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// Text.
    Text(String),
    /// A double; `None` is a typed null (a number literal beyond `f64`).
    Real(Option<f64>),
    /// A 64-bit integer (counts, microseconds since the epoch).
    Integer(i64),
    /// A boolean (databases without one store 0 or 1).
    Bool(bool),
    /// Bytes (ids).
    Bytes(Vec<u8>),
    /// An array of text: a JSON path, for dialects that take paths as arrays.
    TextArray(Vec<String>),
}

/// SQL text and the values of its placeholders, in order.
#[derive(Clone, Debug, PartialEq)]
pub struct Sql {
    /// The text, with the dialect's placeholders.
    pub text: String,
    /// One value per placeholder, in the order they are numbered.
    pub params: Vec<Value>,
}

/// What a JSON scalar is read as.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scalar {
    /// A double.
    Real,
    /// A boolean.
    Bool,
    /// Microseconds since the epoch of an RFC 3339 UTC timestamp as serde writes it
    /// (`2025-03-03T09:00:00Z`, `...:00.123456Z`); fractions beyond microseconds are cut.
    Instant,
    /// Microseconds since the epoch of the midnight (UTC) that starts an ISO date.
    Date,
}

/// Where SQL text and its bound values are written. The dialect decides how a placeholder
/// looks; the order of [`bind`](Writer::bind) calls is the order of the values.
pub struct Writer<'d> {
    dialect: &'d dyn Dialect,
    text: String,
    params: Vec<Value>,
}

impl<'d> Writer<'d> {
    /// An empty writer for `dialect`.
    pub fn new(dialect: &'d dyn Dialect) -> Self {
        Writer {
            dialect,
            text: String::new(),
            params: Vec::new(),
        }
    }

    /// Appends fixed SQL text (never input).
    pub fn push(&mut self, sql: &str) {
        self.text.push_str(sql);
    }

    /// Appends a placeholder bound to `value`.
    pub fn bind(&mut self, value: Value) {
        self.params.push(value);
        let index = self.params.len();
        if let Some(v) = self.params.last() {
            self.dialect.placeholder(&mut self.text, index, v);
        }
    }

    /// The SQL written so far.
    pub fn finish(self) -> Sql {
        Sql {
            text: self.text,
            params: self.params,
        }
    }
}

/// An expression written by the caller into a [`Writer`]: what dialect methods wrap.
pub type Expr<'a> = &'a dyn Fn(&mut Writer<'_>);

/// What differs between SQL databases in compiled rules. The rest of the compiler (the tree
/// walk, the built-in column table, null handling, long chains) is shared.
pub trait Dialect: Sync {
    /// Writes the placeholder of the `index`th bound value (from 1), `value`.
    fn placeholder(&self, out: &mut String, index: usize, value: &Value);

    /// Writes `expr`, a text expression, so that it compares by bytes (as the in-memory
    /// evaluator does), whatever the database's default collation. The default writes it
    /// unchanged.
    fn bytewise(&self, w: &mut Writer<'_>, expr: Expr<'_>) {
        expr(w)
    }

    /// Writes the JSON value at `path` of the JSON (or JSON text) column `column` as an SQL
    /// scalar: text for strings, null when absent. The path is bound, not written.
    fn json_at(&self, w: &mut Writer<'_>, column: &str, path: &[&str]);

    /// Writes `expr` (a scalar read by [`json_at`](Dialect::json_at) or a column) read as
    /// `to`.
    fn convert(&self, w: &mut Writer<'_>, to: Scalar, expr: Expr<'_>);

    /// Writes a boolean that is true when the JSON array at `path` of `column` has a text
    /// element equal to `needle`, false otherwise (also when there is no array there).
    fn json_array_has(&self, w: &mut Writer<'_>, column: &str, path: &[&str], needle: Expr<'_>);

    /// Writes a boolean that is true when `needle` occurs in `haystack` (both text), null
    /// when either is null. The default uses `instr`.
    fn text_contains(&self, w: &mut Writer<'_>, haystack: Expr<'_>, needle: Expr<'_>) {
        w.push("instr(");
        haystack(w);
        w.push(", ");
        needle(w);
        w.push(") > 0");
    }
}

const FROM: &str = " FROM customers c \
    JOIN profiles p ON p.tenant_id = c.tenant_id AND p.customer_id = c.id \
    LEFT JOIN value_scores v ON v.tenant_id = c.tenant_id AND v.customer_id = c.id \
    LEFT JOIN value_classes k ON k.tenant_id = c.tenant_id AND k.customer_id = c.id \
    WHERE c.tenant_id = ";
const DAY_MICROS: &str = "86400000000";
/// The rest of a subquery over a person's primary account (`rs`) and its profile (`pa`).
const PRIMARY_ACCOUNT: &str = " FROM relationships rs JOIN profiles pa ON pa.tenant_id = \
    rs.tenant_id AND pa.customer_id = rs.organization WHERE rs.tenant_id = c.tenant_id \
    AND rs.person = c.id AND rs.is_primary ORDER BY rs.organization LIMIT 1)";
/// The open deals (`o`) with the customer as their account.
const OPEN_DEALS: &str = "FROM opportunities o WHERE o.tenant_id = c.tenant_id \
    AND o.account = c.id AND o.outcome = 'open'";

/// The query selecting the ids of `tenant`'s customers that `rule` selects at `now`, in
/// id order, after `after` and at most `limit` of them. Type-checks the rule first.
pub fn select_ids(
    dialect: &dyn Dialect,
    tenant: TenantId,
    rule: &Rule,
    schema: &FieldSchema,
    now: DateTime<Utc>,
    after: Option<CustomerId>,
    limit: Option<u64>,
) -> Result<Sql> {
    let mut w = query(dialect, "SELECT c.id", tenant, rule, schema, now)?;
    if let Some(a) = after {
        w.push(" AND c.id > ");
        w.bind(Value::Bytes(a.as_bytes().to_vec()));
    }
    w.push(" ORDER BY c.id");
    if let Some(l) = limit {
        w.push(" LIMIT ");
        w.bind(Value::Integer(i64::try_from(l).unwrap_or(i64::MAX)));
    }
    Ok(w.finish())
}

/// The query counting `tenant`'s customers that `rule` selects at `now`. Type-checks the
/// rule first.
pub fn count(
    dialect: &dyn Dialect,
    tenant: TenantId,
    rule: &Rule,
    schema: &FieldSchema,
    now: DateTime<Utc>,
) -> Result<Sql> {
    Ok(query(dialect, "SELECT count(*)", tenant, rule, schema, now)?.finish())
}

fn query<'d>(
    dialect: &'d dyn Dialect,
    select: &str,
    tenant: TenantId,
    rule: &Rule,
    schema: &FieldSchema,
    now: DateTime<Utc>,
) -> Result<Writer<'d>> {
    schema.check(rule)?;
    let mut w = Writer::new(dialect);
    w.push(select);
    w.push(FROM);
    w.bind(Value::Bytes(tenant.as_bytes().to_vec()));
    w.push(" AND ");
    Compiler {
        schema,
        now: now.timestamp_micros(),
        dialect,
    }
    .rule(&mut w, rule);
    Ok(w)
}

/// Type-checks `rule` and compiles it into a boolean SQL expression over `c`, `p`, `v`
/// and `k` (see the [module docs](self)).
pub fn compile(
    dialect: &dyn Dialect,
    rule: &Rule,
    schema: &FieldSchema,
    now: DateTime<Utc>,
) -> Result<Sql> {
    schema.check(rule)?;
    let mut w = Writer::new(dialect);
    Compiler {
        schema,
        now: now.timestamp_micros(),
        dialect,
    }
    .rule(&mut w, rule);
    Ok(w.finish())
}

fn date_micros(d: NaiveDate) -> i64 {
    d.and_time(NaiveTime::MIN).and_utc().timestamp_micros()
}

/// The tree walk. Recursion is bounded by the rule's depth, which `FieldSchema::check`
/// (through `Rule::validate`) limits.
struct Compiler<'a> {
    schema: &'a FieldSchema,
    now: i64,
    dialect: &'a dyn Dialect,
}

impl Compiler<'_> {
    fn literal(&self, w: &mut Writer<'_>, l: &Literal) {
        match l {
            Literal::Text(t) => w.bind(Value::Text(t.clone())),
            Literal::Number(n) => w.bind(Value::Real(n.to_f64())),
            Literal::Bool(b) => w.bind(Value::Bool(*b)),
            Literal::Date(d) => w.bind(Value::Integer(date_micros(*d))),
            Literal::List(_) => w.push("NULL"),
        }
    }

    fn operand(&self, w: &mut Writer<'_>, o: &Operand) {
        w.push("(");
        match o {
            Operand::Literal(l) => self.literal(w, l),
            Operand::Now { offset } => {
                w.bind(Value::Integer(self.now.saturating_add(offset.micros())))
            }
            Operand::Field(name) => match self.schema.resolve(name) {
                Some((FieldSource::Builtin(b), _)) => self.builtin(w, b),
                Some((FieldSource::Attr(key, ty), _)) => self.attr(w, &key, ty),
                Some((FieldSource::StageAmount(stage), _)) => self.deal_amount(w, Some(&stage)),
                None => w.push("NULL"),
            },
        }
        w.push(")");
    }

    fn days_since(&self, w: &mut Writer<'_>, column: &str) {
        w.push("(");
        w.bind(Value::Integer(self.now));
        w.push(" - ");
        w.push(column);
        w.push(") / ");
        w.push(DAY_MICROS);
    }

    fn record(&self, w: &mut Writer<'_>, path: &[&str]) {
        self.dialect.json_at(w, "c.record", path);
    }

    fn record_text(&self, w: &mut Writer<'_>, field: &str) {
        self.dialect
            .bytewise(w, &|w: &mut Writer<'_>| self.record(w, &[field]));
    }

    fn record_as(&self, w: &mut Writer<'_>, to: Scalar, path: &[&str]) {
        self.dialect
            .convert(w, to, &|w: &mut Writer<'_>| self.record(w, path));
    }

    fn currency(&self) -> Value {
        Value::Text(self.schema.currency.code().to_string())
    }

    fn builtin(&self, w: &mut Writer<'_>, b: Builtin) {
        let column = match b {
            Builtin::Id => return self.record_text(w, "id"),
            Builtin::Name => return self.record_text(w, "name"),
            Builtin::Kind => return self.record_text(w, "kind"),
            Builtin::Owner => return self.record_text(w, "owner"),
            Builtin::Team => return self.record_text(w, "team"),
            Builtin::Lifecycle => {
                return self
                    .dialect
                    .bytewise(w, &|w: &mut Writer<'_>| w.push("c.lifecycle"))
            }
            Builtin::RfmSegment => {
                return self
                    .dialect
                    .bytewise(w, &|w: &mut Writer<'_>| w.push("k.rfm_segment"))
            }
            Builtin::AbcClass => {
                return self
                    .dialect
                    .bytewise(w, &|w: &mut Writer<'_>| w.push("k.abc_class"))
            }
            Builtin::ConsentEmail => return self.record_as(w, Scalar::Bool, &["consent", "email"]),
            Builtin::ConsentSms => return self.record_as(w, Scalar::Bool, &["consent", "sms"]),
            Builtin::ConsentPhone => return self.record_as(w, Scalar::Bool, &["consent", "phone"]),
            Builtin::CreatedAt => return self.record_as(w, Scalar::Instant, &["created_at"]),
            Builtin::UpdatedAt => return self.record_as(w, Scalar::Instant, &["updated_at"]),
            Builtin::InteractionCount => "p.interaction_count",
            Builtin::PurchaseCount => "p.purchase_count",
            Builtin::ComplaintCount => "p.complaint_count",
            Builtin::ServiceRequestCount => "p.service_request_count",
            Builtin::FirstContactAt => "p.first_contact_at",
            Builtin::LastContactAt => "p.last_contact_at",
            Builtin::FirstPurchaseAt => "p.first_purchase_at",
            Builtin::LastPurchaseAt => "p.last_purchase_at",
            Builtin::PAlive => "v.p_alive",
            Builtin::ExpectedPurchases90d => "v.expected_purchases_90d",
            Builtin::RScore => "k.r",
            Builtin::FScore => "k.f",
            Builtin::MScore => "k.m",
            Builtin::DaysSinceLastPurchase => return self.days_since(w, "p.last_purchase_at"),
            Builtin::DaysSinceLastContact => return self.days_since(w, "p.last_contact_at"),
            Builtin::DaysSinceFirstPurchase => return self.days_since(w, "p.first_purchase_at"),
            Builtin::Revenue => {
                let code = self.schema.currency.code();
                return self
                    .dialect
                    .convert(w, Scalar::Real, &|w: &mut Writer<'_>| {
                        w.push("COALESCE(");
                        self.dialect.json_at(w, "p.revenue", &[code]);
                        w.push(", '0')");
                    });
            }
            Builtin::PredictedClv => {
                w.push("CASE WHEN v.currency = ");
                w.bind(self.currency());
                w.push(" THEN ");
                self.dialect
                    .convert(w, Scalar::Real, &|w: &mut Writer<'_>| {
                        w.push("v.predicted_clv")
                    });
                w.push(" END");
                return;
            }
            Builtin::ContactsCount => {
                w.push(
                    "(SELECT count(*) FROM relationships rs WHERE rs.tenant_id = c.tenant_id \
                     AND rs.organization = c.id)",
                );
                return;
            }
            Builtin::AccountId => {
                w.push("(SELECT ");
                self.dialect.bytewise(w, &|w: &mut Writer<'_>| {
                    self.dialect.json_at(w, "rs.record", &["organization"])
                });
                w.push(PRIMARY_ACCOUNT);
                return;
            }
            Builtin::AccountRevenue => {
                w.push("(SELECT ");
                self.dialect
                    .convert(w, Scalar::Real, &|w: &mut Writer<'_>| {
                        w.push("COALESCE(");
                        self.dialect
                            .json_at(w, "pa.revenue", &[self.schema.currency.code()]);
                        w.push(", '0')");
                    });
                w.push(PRIMARY_ACCOUNT);
                return;
            }
            Builtin::OpenDeals => {
                w.push("(SELECT count(*) ");
                w.push(OPEN_DEALS);
                w.push(")");
                return;
            }
            Builtin::OpenDealAmount => return self.deal_amount(w, None),
            // Lists are compiled by the operators that take them; anything else is unknown.
            _ => "NULL",
        };
        w.push(column);
    }

    /// The open deals' amounts in the schema's currency, in major units: their sum (0
    /// without any), or the largest of one stage's (null without any).
    fn deal_amount(&self, w: &mut Writer<'_>, stage: Option<&str>) {
        let scale = 10_u64.saturating_pow(crm_core::Money::decimals_of(self.schema.currency));
        // Summed as reals: an integer sum could overflow.
        w.push(if stage.is_some() {
            "((SELECT MAX("
        } else {
            "((SELECT COALESCE(SUM("
        });
        self.dialect
            .convert(w, Scalar::Real, &|w: &mut Writer<'_>| {
                w.push("o.amount_minor")
            });
        w.push(if stage.is_some() { ") " } else { "), 0) " });
        w.push(OPEN_DEALS);
        w.push(" AND o.currency = ");
        w.bind(self.currency());
        if let Some(key) = stage {
            w.push(" AND o.stage = ");
            w.bind(Value::Text(key.to_string()));
        }
        w.push(") / ");
        w.push(&scale.to_string());
        w.push(")");
    }

    fn attr(&self, w: &mut Writer<'_>, key: &str, ty: AttrType) {
        // A key no attribute can have is never set: null, as in memory. A list is read only
        // by the operators that take lists.
        if AttrKey::parse(key).is_err() || ty == AttrType::TextList {
            w.push("NULL");
            return;
        }
        let tag = match ty {
            AttrType::Text => "text",
            AttrType::Number => "number",
            AttrType::Bool => "bool",
            AttrType::Date => "date",
            AttrType::Money | AttrType::TextList => "money",
        };
        w.push("CASE WHEN ");
        self.record(w, &["attributes", key, "type"]);
        w.push(" = ");
        w.bind(Value::Text(tag.to_string()));
        if ty == AttrType::Money {
            w.push(" AND ");
            self.record(w, &["attributes", key, "value", "currency"]);
            w.push(" = ");
            w.bind(self.currency());
        }
        w.push(" THEN ");
        match ty {
            AttrType::Number => self.record_as(w, Scalar::Real, &["attributes", key, "value"]),
            AttrType::Money => {
                self.record_as(w, Scalar::Real, &["attributes", key, "value", "amount"])
            }
            AttrType::Bool => self.record_as(w, Scalar::Bool, &["attributes", key, "value"]),
            AttrType::Date => self.record_as(w, Scalar::Date, &["attributes", key, "value"]),
            AttrType::Text | AttrType::TextList => {
                self.dialect.bytewise(w, &|w: &mut Writer<'_>| {
                    self.record(w, &["attributes", key, "value"])
                })
            }
        }
        w.push(" END");
    }

    /// Membership of `needle` in a list field; null when the needle is null.
    fn list_contains(&self, w: &mut Writer<'_>, list: &Operand, needle: &Operand) {
        w.push("CASE WHEN ");
        self.operand(w, needle);
        w.push(" IS NULL THEN NULL ELSE ");
        let needle = |w: &mut Writer<'_>| self.operand(w, needle);
        match list {
            Operand::Field(name) => match self.schema.resolve(name) {
                Some((FieldSource::Builtin(Builtin::Tags), _)) => {
                    w.push("EXISTS (SELECT 1 FROM customer_tags t WHERE t.tenant_id = c.tenant_id AND t.customer_id = c.id AND t.tag = ");
                    needle(w);
                    w.push(")");
                }
                Some((FieldSource::Attr(key, AttrType::TextList), _))
                    if AttrKey::parse(&key).is_ok() =>
                {
                    w.push("(COALESCE(");
                    self.record(w, &["attributes", &key, "type"]);
                    w.push(" = 'text_list', FALSE) AND ");
                    self.dialect.json_array_has(
                        w,
                        "c.record",
                        &["attributes", &key, "value"],
                        &needle,
                    );
                    w.push(")");
                }
                _ => w.push("FALSE"),
            },
            _ => w.push("NULL"),
        }
        w.push(" END");
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
    fn chain(&self, w: &mut Writer<'_>, terms: &[Rule], op: &str, empty: &str) {
        const FLAT: usize = 8;
        match terms.len() {
            0 => w.push(empty),
            n if n <= FLAT => {
                for (i, t) in terms.iter().enumerate() {
                    if i > 0 {
                        w.push(op);
                    }
                    self.rule(w, t);
                }
            }
            n => {
                let (a, b) = terms.split_at(n / 2);
                w.push("(");
                self.chain(w, a, op, empty);
                w.push(")");
                w.push(op);
                w.push("(");
                self.chain(w, b, op, empty);
                w.push(")");
            }
        }
    }

    fn rule(&self, w: &mut Writer<'_>, r: &Rule) {
        w.push("(");
        match r {
            Rule::And { rules } => self.chain(w, rules, " AND ", "1 = 1"),
            Rule::Or { rules } => self.chain(w, rules, " OR ", "1 = 0"),
            Rule::Not { rule } => {
                w.push("NOT ");
                self.rule(w, rule);
            }
            Rule::Compare { left, cmp, right } => {
                self.operand(w, left);
                w.push(match cmp {
                    CmpOp::Eq => " = ",
                    CmpOp::Ne => " <> ",
                    CmpOp::Lt => " < ",
                    CmpOp::Le => " <= ",
                    CmpOp::Gt => " > ",
                    CmpOp::Ge => " >= ",
                });
                self.operand(w, right);
            }
            Rule::Between { operand, low, high } => {
                self.operand(w, operand);
                w.push(" BETWEEN ");
                self.operand(w, low);
                w.push(" AND ");
                self.operand(w, high);
            }
            Rule::In { item, set } => match set {
                Operand::Literal(Literal::List(items)) if items.is_empty() => w.push("FALSE"),
                Operand::Literal(Literal::List(items)) => {
                    self.operand(w, item);
                    w.push(" IN (");
                    for (i, l) in items.iter().enumerate() {
                        if i > 0 {
                            w.push(", ");
                        }
                        self.literal(w, l);
                    }
                    w.push(")");
                }
                list => self.list_contains(w, list, item),
            },
            Rule::Contains { haystack, needle } if self.is_list(haystack) => {
                self.list_contains(w, haystack, needle)
            }
            Rule::Contains { haystack, needle } => self.dialect.text_contains(
                w,
                &|w: &mut Writer<'_>| self.operand(w, haystack),
                &|w: &mut Writer<'_>| self.operand(w, needle),
            ),
            Rule::StartsWith { text, prefix } => {
                w.push("substr(");
                self.operand(w, text);
                w.push(", 1, length(");
                self.operand(w, prefix);
                w.push(")) = ");
                self.operand(w, prefix);
            }
            Rule::IsNull { operand, negated } => {
                self.operand(w, operand);
                w.push(if *negated { " IS NOT NULL" } else { " IS NULL" });
            }
        }
        w.push(")");
    }
}
