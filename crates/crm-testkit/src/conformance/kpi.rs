//! Conformance cases: stored KPI rules.

use super::*;

cases! {
    /// KPI rules are stored, edited with optimistic concurrency, listed by key, deleted,
    /// and kept per tenant.
    async fn kpi_rules_are_stored_and_edited(store) {
        use crm_core::kpi::{KpiAction, KpiMetric, KpiRule, KpiScope};
        use crm_core::notify::TemplateName;
        use crm_core::sla::{SlaMetric, SlaTarget};
        let (crm, _) = crm(&store);
        let (tenant, other) = (TenantId::new(), TenantId::new());
        let rule = |key: &str, hours: i64| KpiRule {
            key: TemplateName::parse(key).unwrap(),
            name: format!("{key} within {hours} h"),
            metric: KpiMetric::Case(SlaTarget::new(SlaMetric::FirstReply, Duration::hours(hours), 0.8).unwrap()),
            calendar: crm_core::calendar::BusinessCalendar::always(),
            scope: KpiScope { kinds: vec![crm_core::case::CaseKind::Complaint], ..KpiScope::default() },
            compliance_goal: 0.95,
            on_warning: vec![KpiAction::NotifyAssignee],
            on_breach: vec![KpiAction::NotifyTeamLead],
        };
        crm.tenant(tenant).kpis().add_rule(rule("reply", 4)).await.unwrap();
        crm.tenant(tenant).kpis().add_rule(rule("close", 72)).await.unwrap();
        assert!(matches!(crm.tenant(tenant).kpis().add_rule(rule("reply", 8)).await, Err(Error::Duplicate { .. })));
        let mut bad = rule("bad", 4);
        bad.compliance_goal = 2.0;
        assert_eq!(crm.tenant(tenant).kpis().add_rule(bad).await.unwrap_err().field(), Some("compliance_goal"));
        let stored = crm.tenant(tenant).kpis().rules().await.unwrap();
        assert_eq!(stored.iter().map(|r| r.rule.key.as_str()).collect::<Vec<_>>(), ["close", "reply"]);
        assert_eq!(stored[1].rule, rule("reply", 4));
        assert_eq!(stored[1].version, 1);
        crm.tenant(tenant).kpis().update_rule(rule("reply", 6), 1).await.unwrap();
        assert!(matches!(crm.tenant(tenant).kpis().update_rule(rule("reply", 5), 1).await, Err(Error::Conflict { .. })));
        assert_not_found(crm.tenant(tenant).kpis().update_rule(rule("nope", 5), 1).await, "unknown rule");
        let now = crm.tenant(tenant).kpis().rules().await.unwrap();
        assert_eq!((now[1].version, now[1].rule.case_target().unwrap().target()), (2, Duration::hours(6)));
        assert!(crm.tenant(other).kpis().rules().await.unwrap().is_empty());
        assert_not_found(crm.tenant(other).kpis().delete_rule(&TemplateName::parse("reply").unwrap()).await, "other tenant");
        crm.tenant(tenant).kpis().delete_rule(&TemplateName::parse("close").unwrap()).await.unwrap();
        let engine = crm.tenant(tenant).kpis().engine().await.unwrap();
        assert_eq!(engine.rules().map(|r| r.key.as_str()).collect::<Vec<_>>(), ["reply"]);
    }
}
