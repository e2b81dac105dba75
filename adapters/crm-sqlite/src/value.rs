//! Customer-value scores and fitted models.

use std::str::FromStr;

use async_trait::async_trait;
use crm_core::value_class::{AbcClass, RfmSegment};
use crm_core::{
    CustomerId, Money, Result, TenantId, ValueClasses, ValueModel, ValueScores, ValueStore,
};
use rusqlite::types::Value;
use rusqlite::{params, params_from_iter, OptionalExtension, TransactionBehavior};
use rust_decimal::Decimal;

use crate::codec::{corrupt, from_micros, json, micros, to_json, write_error};
use crate::{storage, SqliteStore};

const PROFILE_EXISTS: &str = "SELECT 1 FROM profiles WHERE tenant_id = ?1 AND customer_id = ?2";
const UPSERT_SCORES: &str = "INSERT INTO value_scores (tenant_id, customer_id, p_alive, \
    expected_purchases_90d, predicted_clv, currency, scored_at) \
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) \
    ON CONFLICT (tenant_id, customer_id) DO UPDATE SET p_alive = excluded.p_alive, \
    expected_purchases_90d = excluded.expected_purchases_90d, \
    predicted_clv = excluded.predicted_clv, currency = excluded.currency, \
    scored_at = excluded.scored_at";
const SELECT_SCORES: &str = "SELECT p_alive, expected_purchases_90d, predicted_clv, currency, \
    scored_at FROM value_scores WHERE tenant_id = ?1 AND customer_id = ?2";
const UPSERT_CLASSES: &str = "INSERT INTO value_classes (tenant_id, customer_id, r, f, m, \
    rfm_segment, abc_class, as_of) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) \
    ON CONFLICT (tenant_id, customer_id) DO UPDATE SET r = excluded.r, f = excluded.f, \
    m = excluded.m, rfm_segment = excluded.rfm_segment, abc_class = excluded.abc_class, \
    as_of = excluded.as_of";
const SELECT_CLASSES: &str = "SELECT r, f, m, rfm_segment, abc_class, as_of FROM value_classes \
    WHERE tenant_id = ?1 AND customer_id = ?2";
const INSERT_MODEL: &str =
    "INSERT INTO value_models (tenant_id, fitted_at, model) VALUES (?1, ?2, ?3)";
const LATEST_MODEL: &str = "SELECT model FROM value_models WHERE tenant_id = ?1 \
    ORDER BY fitted_at DESC LIMIT 1";

fn exists(conn: &rusqlite::Connection, tenant: &[u8], id: CustomerId) -> Result<bool> {
    conn.prepare_cached(PROFILE_EXISTS)
        .and_then(|mut s| s.exists(params![tenant, id.as_bytes().as_slice()]))
        .map_err(storage)
}

impl SqliteStore {
    /// Upserts one row per customer with `sql`, in one transaction; an unknown customer
    /// rolls everything back with `NotFound`.
    async fn upsert_each<V: Send + 'static>(
        &self,
        tenant: TenantId,
        rows: Vec<(CustomerId, V)>,
        sql: &'static str,
        values: fn(&[u8], CustomerId, &V) -> Vec<Value>,
    ) -> Result<()> {
        self.write(move |conn| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(storage)?;
            let t = tenant.as_bytes().as_slice();
            for (customer, row) in &rows {
                if !exists(&tx, t, *customer)? {
                    return Err(crm_core::Error::not_found("customer", customer));
                }
                tx.prepare_cached(sql)
                    .and_then(|mut st| st.execute(params_from_iter(values(t, *customer, row))))
                    .map_err(storage)?;
            }
            tx.commit().map_err(storage)
        })
        .await
    }
}

#[async_trait]
impl ValueStore for SqliteStore {
    async fn set_value_scores(
        &self,
        tenant: TenantId,
        scores: Vec<(CustomerId, ValueScores)>,
    ) -> Result<()> {
        self.upsert_each(tenant, scores, UPSERT_SCORES, |t, customer, s| {
            vec![
                Value::Blob(t.to_vec()),
                Value::Blob(customer.as_bytes().to_vec()),
                Value::Real(s.p_alive),
                Value::Real(s.expected_purchases_90d),
                Value::Text(s.predicted_clv.amount().to_string()),
                Value::Text(s.predicted_clv.currency().code().to_string()),
                Value::Integer(micros(s.scored_at)),
            ]
        })
        .await
    }

    async fn value_scores(
        &self,
        tenant: TenantId,
        customer: CustomerId,
    ) -> Result<Option<ValueScores>> {
        self.read(move |conn| {
            let t = tenant.as_bytes().as_slice();
            if !exists(conn, t, customer)? {
                return Err(crm_core::Error::not_found("customer", customer));
            }
            let row: Option<(f64, f64, String, String, i64)> = conn
                .prepare_cached(SELECT_SCORES)
                .and_then(|mut s| {
                    s.query_row(params![t, customer.as_bytes().as_slice()], |r| {
                        Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
                    })
                    .optional()
                })
                .map_err(storage)?;
            row.map(|(p_alive, expected, clv, currency, at)| {
                let amount =
                    Decimal::from_str(&clv).map_err(|e| corrupt(format!("predicted clv: {e}")))?;
                Ok(ValueScores {
                    p_alive,
                    expected_purchases_90d: expected,
                    predicted_clv: Money::new(amount, &currency)
                        .map_err(|e| corrupt(format!("predicted clv: {e}")))?,
                    scored_at: from_micros(at)?,
                })
            })
            .transpose()
        })
        .await
    }

    async fn save_value_model(&self, tenant: TenantId, model: &ValueModel) -> Result<()> {
        let body = to_json(model)?;
        let at = model.fitted_at;
        self.write(move |conn| {
            conn.prepare_cached(INSERT_MODEL)
                .and_then(|mut s| {
                    s.execute(params![tenant.as_bytes().as_slice(), micros(at), body])
                })
                .map_err(|e| write_error(e, "value model", || format!("fitted_at {at}")))?;
            Ok(())
        })
        .await
    }

    async fn set_value_classes(
        &self,
        tenant: TenantId,
        classes: Vec<(CustomerId, ValueClasses)>,
    ) -> Result<()> {
        self.upsert_each(tenant, classes, UPSERT_CLASSES, |t, customer, c| {
            vec![
                Value::Blob(t.to_vec()),
                Value::Blob(customer.as_bytes().to_vec()),
                Value::Integer(i64::from(c.r)),
                Value::Integer(i64::from(c.f)),
                Value::Integer(i64::from(c.m)),
                Value::Text(c.segment.as_str().to_string()),
                Value::Text(c.abc.as_str().to_string()),
                Value::Text(c.as_of.format("%Y-%m-%d").to_string()),
            ]
        })
        .await
    }

    async fn value_classes(
        &self,
        tenant: TenantId,
        customer: CustomerId,
    ) -> Result<Option<ValueClasses>> {
        self.read(move |conn| {
            let t = tenant.as_bytes().as_slice();
            if !exists(conn, t, customer)? {
                return Err(crm_core::Error::not_found("customer", customer));
            }
            let row: Option<(u8, u8, u8, String, String, String)> = conn
                .prepare_cached(SELECT_CLASSES)
                .and_then(|mut s| {
                    s.query_row(params![t, customer.as_bytes().as_slice()], |r| {
                        Ok((
                            r.get(0)?,
                            r.get(1)?,
                            r.get(2)?,
                            r.get(3)?,
                            r.get(4)?,
                            r.get(5)?,
                        ))
                    })
                    .optional()
                })
                .map_err(storage)?;
            row.map(|(r, f, m, segment, abc, as_of)| {
                let bad = |e: crm_core::Error| corrupt(format!("value classes: {e}"));
                Ok(ValueClasses {
                    r,
                    f,
                    m,
                    segment: RfmSegment::parse(&segment).map_err(bad)?,
                    abc: AbcClass::parse(&abc).map_err(bad)?,
                    as_of: as_of
                        .parse()
                        .map_err(|e| corrupt(format!("value classes as_of: {e}")))?,
                })
            })
            .transpose()
        })
        .await
    }

    async fn latest_value_model(&self, tenant: TenantId) -> Result<Option<ValueModel>> {
        self.read(move |conn| {
            let body: Option<String> = conn
                .prepare_cached(LATEST_MODEL)
                .and_then(|mut s| {
                    s.query_row(params![tenant.as_bytes().as_slice()], |r| r.get(0))
                        .optional()
                })
                .map_err(storage)?;
            body.map(|b| json::<ValueModel>(&b, "value model"))
                .transpose()
        })
        .await
    }
}
