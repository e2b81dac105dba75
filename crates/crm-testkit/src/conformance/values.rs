//! Conformance cases: value scores, models and classes.

use super::*;

cases! {
    /// Value scores are stored, replaced and read back exactly; unscored customers have none.
    async fn value_scores_round_trip_and_replace(store) {
        let (crm, _) = crm(&store);
        let tenant = TenantId::new();
        let a = register(&crm, tenant, simple("A")).await;
        let b = register(&crm, tenant, simple("B")).await;
        let c = register(&crm, tenant, simple("C")).await;
        crm.tenant(tenant).value().set_scores(vec![(a.id, scores(0.25, "120.50")), (b.id, scores(0.987_654_321_012_345_6, "0.01"))]).await.unwrap();
        assert_eq!(crm.tenant(tenant).value().scores(a.id).await.unwrap(), Some(scores(0.25, "120.50")));
        assert_eq!(crm.tenant(tenant).value().scores(b.id).await.unwrap(), Some(scores(0.987_654_321_012_345_6, "0.01")));
        assert_eq!(crm.tenant(tenant).value().scores(c.id).await.unwrap(), None);
        crm.tenant(tenant).value().set_scores(vec![(a.id, scores(0.5, "99"))]).await.unwrap();
        assert_eq!(crm.tenant(tenant).value().scores(a.id).await.unwrap(), Some(scores(0.5, "99")));
        assert_eq!(crm.tenant(tenant).value().scores(b.id).await.unwrap(), Some(scores(0.987_654_321_012_345_6, "0.01")), "others untouched");
    }

    /// Scores for an unknown customer are refused whole; out-of-range scores are a
    /// validation error naming the entry.
    async fn value_scores_are_all_or_nothing(store) {
        let (crm, _) = crm(&store);
        let tenant = TenantId::new();
        let a = register(&crm, tenant, simple("A")).await;
        let r = crm.tenant(tenant).value().set_scores(vec![(a.id, scores(0.5, "1")), (CustomerId::new(), scores(0.5, "1"))]).await;
        assert_not_found(r, "unknown customer");
        assert_eq!(crm.tenant(tenant).value().scores(a.id).await.unwrap(), None, "nothing half-written");
        let r = crm.tenant(tenant).value().set_scores(vec![(a.id, scores(0.5, "1")), (a.id, scores(1.5, "1"))]).await;
        assert_eq!(r.unwrap_err().field(), Some("scores[1].p_alive"));
        assert_not_found(store.value_scores(tenant, CustomerId::new()).await, "read unknown");
    }

    /// The latest model per tenant is the one fitted last, whatever the save order; models
    /// round-trip exactly and a second model at the same instant is Duplicate.
    async fn value_models_latest_per_tenant(store) {
        let (crm, _) = crm(&store);
        let (a, b) = (TenantId::new(), TenantId::new());
        assert_eq!(crm.tenant(a).value().latest_model().await.unwrap(), None);
        let later = model(t0() + Duration::days(30), 0.242_594_522_644_512_45);
        let earlier = model(t0(), 0.3);
        crm.tenant(a).value().save_model(&later).await.unwrap();
        crm.tenant(a).value().save_model(&earlier).await.unwrap();
        assert_eq!(crm.tenant(a).value().latest_model().await.unwrap(), Some(later.clone()));
        let r = crm.tenant(a).value().save_model(&model(t0(), 0.4)).await;
        assert!(matches!(r, Err(Error::Duplicate { .. })), "got {r:?}");
        assert_eq!(crm.tenant(b).value().latest_model().await.unwrap(), None, "tenant B sees no model of A's");
        let bad = ValueModel { unit_days: 0, ..later };
        assert_eq!(crm.tenant(b).value().save_model(&bad).await.unwrap_err().field(), Some("unit_days"));
    }

    /// Tenant B neither reads nor writes tenant A's scores.
    async fn value_scores_are_tenant_isolated(store) {
        let (crm, _) = crm(&store);
        let (a, b) = (TenantId::new(), TenantId::new());
        let c = register(&crm, a, simple("A")).await;
        crm.tenant(a).value().set_scores(vec![(c.id, scores(0.5, "1"))]).await.unwrap();
        assert_not_found(store.value_scores(b, c.id).await, "read");
        assert_not_found(crm.tenant(b).value().set_scores(vec![(c.id, scores(0.1, "2"))]).await, "write");
        assert_eq!(crm.tenant(a).value().scores(c.id).await.unwrap(), Some(scores(0.5, "1")));
    }

    /// Value classes are stored, replaced and read back; out-of-range scores are refused.
    async fn value_classes_round_trip(store) {
        let (crm, _) = crm(&store);
        let (tenant, other) = (TenantId::new(), TenantId::new());
        let a = register(&crm, tenant, simple("A")).await;
        let classes = ValueClasses {
            r: 5,
            f: 3,
            m: 1,
            segment: crm_core::value_class::RfmSegment::PotentialLoyalist,
            abc: crm_core::value_class::AbcClass::C,
            as_of: t0().date_naive(),
        };
        assert_eq!(crm.tenant(tenant).value().classes(a.id).await.unwrap(), None);
        crm.tenant(tenant).value().set_classes(vec![(a.id, classes)]).await.unwrap();
        assert_eq!(crm.tenant(tenant).value().classes(a.id).await.unwrap(), Some(classes));
        let newer = ValueClasses { r: 1, segment: crm_core::value_class::RfmSegment::Lost, ..classes };
        crm.tenant(tenant).value().set_classes(vec![(a.id, newer)]).await.unwrap();
        assert_eq!(crm.tenant(tenant).value().classes(a.id).await.unwrap(), Some(newer));
        let r = crm.tenant(tenant).value().set_classes(vec![(a.id, ValueClasses { m: 6, ..classes })]).await;
        assert_eq!(r.unwrap_err().field(), Some("classes[0].m"));
        assert_not_found(crm.tenant(tenant).value().set_classes(vec![(a.id, classes), (CustomerId::new(), classes)]).await, "unknown");
        assert_eq!(crm.tenant(tenant).value().classes(a.id).await.unwrap(), Some(newer), "nothing half-written");
        assert_not_found(store.value_classes(other, a.id).await, "other tenant");
    }
}
