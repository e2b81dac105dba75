//! Customer-value scores, classes and fitted models.

use std::str::FromStr;

use async_trait::async_trait;
use crm_core::value_class::{AbcClass, RfmSegment};
use crm_core::{
    CustomerId, Error, Money, Result, TenantId, ValueClasses, ValueModel, ValueScores, ValueStore,
};
use rust_decimal::Decimal;
use tokio_postgres::types::ToSql;

use crate::codec::{corrupt, from_micros, json, micros, to_json, write_error};
use crate::customers::customer_exists;
use crate::{storage, PostgresStore};

const UPSERT_SCORES: &str = "INSERT INTO value_scores (tenant_id, customer_id, p_alive, \
    expected_purchases_90d, predicted_clv, currency, scored_at) VALUES ($1, $2, $3, $4, $5, $6, $7) \
    ON CONFLICT (tenant_id, customer_id) DO UPDATE SET p_alive = excluded.p_alive, \
    expected_purchases_90d = excluded.expected_purchases_90d, predicted_clv = excluded.predicted_clv, \
    currency = excluded.currency, scored_at = excluded.scored_at";
const UPSERT_CLASSES: &str = "INSERT INTO value_classes (tenant_id, customer_id, r, f, m, \
    rfm_segment, abc_class, as_of) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
    ON CONFLICT (tenant_id, customer_id) DO UPDATE SET r = excluded.r, f = excluded.f, \
    m = excluded.m, rfm_segment = excluded.rfm_segment, abc_class = excluded.abc_class, \
    as_of = excluded.as_of";

type Params = Vec<Box<dyn ToSql + Sync + Send>>;

impl PostgresStore {
    /// Upserts one row per customer with `sql` in one transaction; an unknown customer rolls
    /// everything back with `NotFound`.
    async fn upsert_each<V: Sync>(
        &self,
        tenant: TenantId,
        rows: &[(CustomerId, V)],
        sql: &str,
        values: fn(&V) -> Params,
    ) -> Result<()> {
        let t = tenant.as_bytes().to_vec();
        self.retrying(|| async {
            let mut client = self.client(tenant).await?;
            let tx = client.transaction().await.map_err(storage)?;
            let stmt = tx.prepare(sql).await.map_err(storage)?;
            for (customer, row) in rows {
                if !customer_exists(&tx, &t, *customer).await? {
                    return Err(Error::not_found("customer", customer));
                }
                let id = customer.as_bytes().to_vec();
                let rest = values(row);
                let mut args: Vec<&(dyn ToSql + Sync)> = vec![&t, &id];
                args.extend(rest.iter().map(|a| a.as_ref() as &(dyn ToSql + Sync)));
                tx.execute(&stmt, &args).await.map_err(storage)?;
            }
            tx.commit().await.map_err(storage)
        })
        .await
    }

    async fn exists_or_not_found(
        &self,
        tenant: TenantId,
        customer: CustomerId,
    ) -> Result<deadpool_postgres::Object> {
        let client = self.client(tenant).await?;
        if !customer_exists(&client, tenant.as_bytes(), customer).await? {
            return Err(Error::not_found("customer", customer));
        }
        Ok(client)
    }
}

#[async_trait]
impl ValueStore for PostgresStore {
    async fn set_value_scores(
        &self,
        tenant: TenantId,
        scores: Vec<(CustomerId, ValueScores)>,
    ) -> Result<()> {
        self.upsert_each(tenant, &scores, UPSERT_SCORES, |s| {
            vec![
                Box::new(s.p_alive),
                Box::new(s.expected_purchases_90d),
                Box::new(s.predicted_clv.amount().to_string()),
                Box::new(s.predicted_clv.currency().code().to_string()),
                Box::new(micros(s.scored_at)),
            ]
        })
        .await
    }

    async fn value_scores(
        &self,
        tenant: TenantId,
        customer: CustomerId,
    ) -> Result<Option<ValueScores>> {
        let client = self.exists_or_not_found(tenant, customer).await?;
        let row = client
            .query_opt(
                "SELECT p_alive, expected_purchases_90d, predicted_clv, currency, scored_at FROM value_scores WHERE tenant_id = $1 AND customer_id = $2",
                &[&tenant.as_bytes().to_vec(), &customer.as_bytes().to_vec()],
            )
            .await
            .map_err(storage)?;
        row.map(|r| {
            let amount =
                Decimal::from_str(r.get(2)).map_err(|e| corrupt(format!("predicted clv: {e}")))?;
            Ok(ValueScores {
                p_alive: r.get(0),
                expected_purchases_90d: r.get(1),
                predicted_clv: Money::new(amount, r.get(3))
                    .map_err(|e| corrupt(format!("predicted clv: {e}")))?,
                scored_at: from_micros(r.get(4))?,
            })
        })
        .transpose()
    }

    async fn save_value_model(&self, tenant: TenantId, model: &ValueModel) -> Result<()> {
        let body = to_json(model)?;
        let client = self.client(tenant).await?;
        client
            .execute(
                "INSERT INTO value_models (tenant_id, fitted_at, model) VALUES ($1, $2, $3::text::jsonb)",
                &[&tenant.as_bytes().to_vec(), &micros(model.fitted_at), &body],
            )
            .await
            .map_err(|e| write_error(e, "value model", || format!("fitted_at {}", model.fitted_at)))?;
        Ok(())
    }

    async fn latest_value_model(&self, tenant: TenantId) -> Result<Option<ValueModel>> {
        let client = self.client(tenant).await?;
        let row = client
            .query_opt(
                "SELECT model::text FROM value_models WHERE tenant_id = $1 ORDER BY fitted_at DESC LIMIT 1",
                &[&tenant.as_bytes().to_vec()],
            )
            .await
            .map_err(storage)?;
        row.map(|r| json::<ValueModel>(r.get(0), "value model"))
            .transpose()
    }

    async fn set_value_classes(
        &self,
        tenant: TenantId,
        classes: Vec<(CustomerId, ValueClasses)>,
    ) -> Result<()> {
        self.upsert_each(tenant, &classes, UPSERT_CLASSES, |c| {
            vec![
                Box::new(i64::from(c.r)),
                Box::new(i64::from(c.f)),
                Box::new(i64::from(c.m)),
                Box::new(c.segment.as_str().to_string()),
                Box::new(c.abc.as_str().to_string()),
                Box::new(c.as_of),
            ]
        })
        .await
    }

    async fn value_classes(
        &self,
        tenant: TenantId,
        customer: CustomerId,
    ) -> Result<Option<ValueClasses>> {
        let client = self.exists_or_not_found(tenant, customer).await?;
        let row = client
            .query_opt(
                "SELECT r, f, m, rfm_segment, abc_class, as_of FROM value_classes WHERE tenant_id = $1 AND customer_id = $2",
                &[&tenant.as_bytes().to_vec(), &customer.as_bytes().to_vec()],
            )
            .await
            .map_err(storage)?;
        row.map(|r| {
            let bad = |e: Error| corrupt(format!("value classes: {e}"));
            let score = |i: usize| u8::try_from(r.get::<_, i64>(i)).map_err(|_| corrupt("score"));
            Ok(ValueClasses {
                r: score(0)?,
                f: score(1)?,
                m: score(2)?,
                segment: RfmSegment::parse(r.get(3)).map_err(bad)?,
                abc: AbcClass::parse(r.get(4)).map_err(bad)?,
                as_of: r.get(5),
            })
        })
        .transpose()
    }
}
