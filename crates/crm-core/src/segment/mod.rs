//! Segments: one rule language for selecting customers.
//!
//! A rule is a typed boolean expression over a customer, its profile and its value scores,
//! for example
//!
//! ```text
//! lifecycle = "active" and revenue >= 10000 and days_since_last_purchase <= 90 and "vip" in tags
//! attr.industry in ["auto", "bank"] and not (complaint_count > 2)
//! last_purchase_at < now - 90d and p_alive < 0.3 and predicted_clv > 500
//! ```
//!
//! - [`parse`] reads the text form and reports errors with line, column and what was
//!   expected; [`Rule`]'s `Display` prints the canonical text form, and
//!   `parse(&rule.to_string()) == Ok(rule)`.
//! - [`FieldSchema::check`] rejects unknown fields and type mismatches before anything runs.
//! - [`CompiledRule`] evaluates a rule in memory: the reference semantics (three-valued logic,
//!   as in SQL) that storage adapters compiling rules to SQL must match.
//!
//! Built-in fields: `id`, `name`, `kind`, `lifecycle`, `owner`, `team` (text); `tags` (text list);
//! `created_at`, `updated_at`, `first_contact_at`, `last_contact_at`, `first_purchase_at`,
//! `last_purchase_at` (timestamps); `consent.email`, `consent.sms`, `consent.phone` (bool);
//! `interaction_count`, `purchase_count`, `complaint_count`, `service_request_count`,
//! `revenue` (in the schema's currency), `days_since_last_purchase`,
//! `days_since_last_contact`, `days_since_first_purchase` (whole days, truncated), `p_alive`,
//! `expected_purchases_90d`, `predicted_clv` (numbers; null until scored); `r_score`,
//! `f_score`, `m_score` (numbers), `rfm_segment` (`champions`, `at_risk`, ...) and
//! `abc_class` (`A`, `B`, `C`) (null until classified). Custom attributes
//! are `attr.<key>`, typed by the tenant's [`FieldSchema`].
//!
//! Accounts and deals: `contacts_count` (people related to an organisation), `account.id`
//! and `account.revenue` (a person's primary account, null without one; the revenue in the
//! schema's currency), `open_deals` and `open_deal_amount` (the open deals with the customer
//! as their account: how many, and their amounts added up in the schema's currency), and
//! `deals.<stage>.amount` (the largest open deal in that stage, in the schema's currency;
//! null without one): `deals.negotiation.amount > 10000` picks customers with an open deal
//! over 10,000 in negotiation. What a rule reads of them is a [`SalesFacts`].

mod ast;
mod eval;
mod parse;
mod schema;
mod store;

pub use crate::id::SegmentId;
pub use ast::{CmpOp, Literal, Operand, Rule, Span, SpanUnit};
pub use eval::{whole_days, CompiledRule, SalesFacts, Subject};
pub use parse::{largest_rules, parse, ParseError, MAX_DEPTH, MAX_RULE_BYTES, MAX_TERMS};
pub use schema::{AttrType, Builtin, FieldSchema, FieldSource, FieldType, BUILTINS};
pub use store::{Membership, MembershipChange, Segment};

#[cfg(test)]
mod tests;
