//! A tenant's KPI rules.

use async_trait::async_trait;
use crm_core::kpi::{KpiRule, StoredKpiRule};
use crm_core::notify::TemplateName;
use crm_core::{Error, KpiRuleStore, Result, TenantId};
use rusqlite::{params, OptionalExtension};

use crate::codec::{json, to_json, write_error};
use crate::{storage, SqliteStore};

#[async_trait]
impl KpiRuleStore for SqliteStore {
    async fn insert_kpi_rule(&self, tenant: TenantId, rule: &KpiRule) -> Result<()> {
        let record = to_json(rule)?;
        let key = rule.key.to_string();
        self.write(move |conn| {
            conn.execute(
                "INSERT INTO kpi_rules (tenant_id, key, version, record) VALUES (?1, ?2, 1, ?3)",
                params![tenant.as_bytes().as_slice(), key, record],
            )
            .map_err(|e| write_error(e, "kpi rule", || format!("key {key}")))?;
            Ok(())
        })
        .await
    }

    async fn update_kpi_rule(
        &self,
        tenant: TenantId,
        rule: &KpiRule,
        expected_version: u64,
    ) -> Result<()> {
        let record = to_json(rule)?;
        let key = rule.key.to_string();
        self.write(move |conn| {
            let t = tenant.as_bytes().as_slice();
            let n = conn
                .execute(
                    "UPDATE kpi_rules SET version = version + 1, record = ?3 \
                     WHERE tenant_id = ?1 AND key = ?2 AND version = ?4",
                    params![t, key, record, expected_version as i64],
                )
                .map_err(storage)?;
            if n == 1 {
                return Ok(());
            }
            let actual: Option<i64> = conn
                .query_row(
                    "SELECT version FROM kpi_rules WHERE tenant_id = ?1 AND key = ?2",
                    params![t, key],
                    |r| r.get(0),
                )
                .optional()
                .map_err(storage)?;
            Err(match actual {
                None => Error::not_found("kpi rule", key),
                Some(v) => Error::Conflict {
                    entity: "kpi rule",
                    id: key,
                    expected: expected_version,
                    actual: v as u64,
                },
            })
        })
        .await
    }

    async fn delete_kpi_rule(&self, tenant: TenantId, key: &TemplateName) -> Result<()> {
        let key = key.to_string();
        self.write(move |conn| {
            let n = conn
                .execute(
                    "DELETE FROM kpi_rules WHERE tenant_id = ?1 AND key = ?2",
                    params![tenant.as_bytes().as_slice(), key],
                )
                .map_err(storage)?;
            if n == 0 {
                return Err(Error::not_found("kpi rule", key));
            }
            Ok(())
        })
        .await
    }

    async fn kpi_rules(&self, tenant: TenantId) -> Result<Vec<StoredKpiRule>> {
        self.read(move |conn| {
            let rows: Vec<(i64, String)> = conn
                .prepare_cached(
                    "SELECT version, record FROM kpi_rules WHERE tenant_id = ?1 ORDER BY key",
                )
                .and_then(|mut s| {
                    s.query_map(params![tenant.as_bytes().as_slice()], |r| {
                        Ok((r.get(0)?, r.get(1)?))
                    })?
                    .collect()
                })
                .map_err(storage)?;
            rows.into_iter()
                .map(|(version, text)| {
                    Ok(StoredKpiRule {
                        rule: json(&text, "kpi rule")?,
                        version: version as u64,
                    })
                })
                .collect()
        })
        .await
    }
}
