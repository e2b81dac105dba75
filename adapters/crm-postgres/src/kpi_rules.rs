//! A tenant's KPI rules.

use async_trait::async_trait;
use crm_core::kpi::{KpiRule, StoredKpiRule};
use crm_core::notify::TemplateName;
use crm_core::{Error, KpiRuleStore, Result, TenantId};

use crate::codec::{json, to_json, write_error};
use crate::{storage, PostgresStore};

#[async_trait]
impl KpiRuleStore for PostgresStore {
    async fn insert_kpi_rule(&self, tenant: TenantId, rule: &KpiRule) -> Result<()> {
        let record = to_json(rule)?;
        let key = rule.key.as_str();
        let client = self.client(tenant).await?;
        client
            .execute(
                "INSERT INTO kpi_rules (tenant_id, key, version, record) VALUES ($1, $2, 1, $3)",
                &[&tenant.as_bytes().as_slice(), &key, &record],
            )
            .await
            .map_err(|e| write_error(e, "kpi rule", || format!("key {key}")))?;
        Ok(())
    }

    async fn update_kpi_rule(
        &self,
        tenant: TenantId,
        rule: &KpiRule,
        expected_version: u64,
    ) -> Result<()> {
        let record = to_json(rule)?;
        let key = rule.key.as_str();
        let t = tenant.as_bytes().as_slice();
        let client = self.client(tenant).await?;
        let n = client
            .execute(
                "UPDATE kpi_rules SET version = version + 1, record = $3 \
                 WHERE tenant_id = $1 AND key = $2 AND version = $4",
                &[&t, &key, &record, &(expected_version as i64)],
            )
            .await
            .map_err(storage)?;
        if n == 1 {
            return Ok(());
        }
        let actual = client
            .query_opt(
                "SELECT version FROM kpi_rules WHERE tenant_id = $1 AND key = $2",
                &[&t, &key],
            )
            .await
            .map_err(storage)?;
        Err(match actual {
            None => Error::not_found("kpi rule", key),
            Some(row) => Error::Conflict {
                entity: "kpi rule",
                id: key.to_string(),
                expected: expected_version,
                actual: row.try_get::<_, i64>(0).map_err(storage)? as u64,
            },
        })
    }

    async fn delete_kpi_rule(&self, tenant: TenantId, key: &TemplateName) -> Result<()> {
        let client = self.client(tenant).await?;
        let n = client
            .execute(
                "DELETE FROM kpi_rules WHERE tenant_id = $1 AND key = $2",
                &[&tenant.as_bytes().as_slice(), &key.as_str()],
            )
            .await
            .map_err(storage)?;
        if n == 0 {
            return Err(Error::not_found("kpi rule", key));
        }
        Ok(())
    }

    async fn kpi_rules(&self, tenant: TenantId) -> Result<Vec<StoredKpiRule>> {
        let client = self.client(tenant).await?;
        let rows = client
            .query(
                "SELECT version, record FROM kpi_rules WHERE tenant_id = $1 ORDER BY key COLLATE \"C\"",
                &[&tenant.as_bytes().as_slice()],
            )
            .await
            .map_err(storage)?;
        rows.iter()
            .map(|r| {
                Ok(StoredKpiRule {
                    version: r.try_get::<_, i64>(0).map_err(storage)? as u64,
                    rule: json(r.try_get(1).map_err(storage)?, "kpi rule")?,
                })
            })
            .collect()
    }
}
