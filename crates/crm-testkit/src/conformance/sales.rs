//! Conformance cases: pipelines, opportunities, stage history, the ERP handoff, forecasts.

use super::*;
use crm_core::sales::{
    cells_of, ContactRole, Dimension, ForecastCategory, ForecastQuery, LineItem, Opportunity,
    OpportunityQuery, Outcome, Period, Pipeline, RateTable, Stage, StageChange,
};
use crm_core::{Currency, OpportunityId, PipelineId, StageKey};

/// Five stages: three open (10 %, 40 %, 70 %), won and lost.
pub fn sample_pipeline() -> Pipeline {
    Pipeline::new(
        "New business",
        vec![
            Stage::open("qualify", "Qualify", 10, ForecastCategory::Pipeline).expect("stage"),
            Stage::open("proposal", "Proposal", 40, ForecastCategory::BestCase).expect("stage"),
            Stage::open("negotiation", "Negotiation", 70, ForecastCategory::Commit).expect("stage"),
            Stage::won("won", "Won").expect("stage"),
            Stage::lost("lost", "Lost").expect("stage"),
        ],
    )
    .expect("pipeline")
}

fn money(amount: &str, currency: &str) -> Money {
    Money::parse(amount, currency).expect("money")
}

fn date(y: i32, m: u32, d: u32) -> chrono::NaiveDate {
    chrono::NaiveDate::from_ymd_opt(y, m, d).expect("date")
}

fn deal(
    p: &Pipeline,
    account: CustomerId,
    owner: UserId,
    amount: Money,
    close: chrono::NaiveDate,
) -> Opportunity {
    Opportunity::new("Deal", account, owner, p, amount, close, t0()).expect("deal")
}

async fn history(
    store: &Arc<dyn Storage>,
    tenant: TenantId,
    id: OpportunityId,
) -> Vec<StageChange> {
    collect_pages(2, |page| async move {
        store.stage_history(tenant, id, &page).await
    })
    .await
}

fn stages(h: &[StageChange]) -> Vec<(Option<&str>, &str)> {
    h.iter()
        .map(|c| (c.from.as_ref().map(StageKey::as_str), c.to.as_str()))
        .collect()
}

cases! {
    /// Pipelines round-trip, are listed by id, and are replaced with optimistic
    /// concurrency; a successor may add and rename stages but not remove one.
    async fn pipelines_round_trip_and_keep_their_stages(store) {
        let (crm, _) = crm(&store);
        let tenant = TenantId::new();
        let sales = crm.tenant(tenant).sales();
        let p = sales.create_pipeline(sample_pipeline()).await.unwrap();
        assert_eq!(store.get_pipeline(tenant, p.id).await.unwrap(), p);
        let q = sales.create_pipeline(sample_pipeline()).await.unwrap();
        assert_eq!(sales.pipelines().await.unwrap(), vec![p.clone(), q.clone()]);
        assert!(matches!(sales.create_pipeline(p.clone()).await, Err(Error::Duplicate { .. })));
        let mut next = p.clone();
        next.stages.insert(1, Stage::open("demo", "Demo", 25, ForecastCategory::Pipeline).unwrap());
        next.stages[0].probability = 5;
        let next = sales.update_pipeline(next, 1).await.unwrap();
        assert_eq!(next.version, 2);
        assert_eq!(store.get_pipeline(tenant, p.id).await.unwrap(), next);
        assert!(matches!(sales.update_pipeline(next.clone(), 1).await, Err(Error::Conflict { .. })));
        let mut gone = next.clone();
        gone.stages.remove(0);
        assert_eq!(sales.update_pipeline(gone, 2).await.unwrap_err().field(), Some("stages"));
        let mut stale = next.clone();
        stale.version = 3;
        assert!(matches!(store.update_pipeline(tenant, &stale, 1).await, Err(Error::Conflict { .. })));
        assert_not_found(store.get_pipeline(TenantId::new(), p.id).await, "other tenant");
        assert_not_found(store.get_pipeline(tenant, PipelineId::new()).await, "unknown pipeline");
        assert!(store.pipelines(TenantId::new()).await.unwrap().is_empty());
    }

    /// A deal with every field round-trips; it moves through stages with an append-only
    /// history (who, from, to, amount, probability); a closed deal refuses every change
    /// until reopened; listings filter by owner, account, pipeline, stage, outcome and
    /// close date.
    async fn opportunities_move_through_stages_with_history(store) {
        let (crm, clock) = crm(&store);
        let tenant = TenantId::new();
        let sales = crm.tenant(tenant).sales();
        let p = sales.create_pipeline(sample_pipeline()).await.unwrap();
        let acme = register(&crm, tenant, Customer::organization("Acme GmbH").build().unwrap()).await;
        let ann = register(&crm, tenant, simple("Ann")).await;
        let (rep, helper) = (UserId::new(), UserId::new());
        let mut d = deal(&p, acme.id, rep, money("0", "EUR"), date(2025, 6, 30))
            .with_contact(ann.id, ContactRole::DecisionMaker)
            .with_lines(vec![
                LineItem::new(ExternalRef::new("erp", "FL-20").unwrap(), Decimal::from(3), money("18500", "EUR")).unwrap()
                    .discount(Decimal::new(25, 1)).unwrap(),
                LineItem::new(ExternalRef::new("erp", "SVC-1").unwrap(), Decimal::new(15, 1), money("99.99", "EUR")).unwrap(),
            ])
            .unwrap();
        d.team = vec![helper];
        d.source = Some("Trade fair 2025".into());
        d.competitor = Some("Forks & Co".into());
        d.probability = 15;
        let d = sales.open(d).await.unwrap();
        assert_eq!(d.amount, money("54262.49", "EUR"));
        assert_eq!(store.get_opportunity(tenant, d.id).await.unwrap(), d);
        let mut orphan = deal(&p, CustomerId::new(), rep, money("1", "EUR"), date(2025, 6, 30));
        assert_not_found(sales.open(orphan.clone()).await, "unknown account");
        orphan.account = acme.id;
        orphan = orphan.with_contact(CustomerId::new(), ContactRole::Billing);
        assert_not_found(sales.open(orphan).await, "unknown contact");
        let mut elsewhere = deal(&p, acme.id, rep, money("1", "EUR"), date(2025, 6, 30));
        elsewhere.pipeline = PipelineId::new();
        assert_not_found(sales.open(elsewhere.clone()).await, "unknown pipeline");
        let change = elsewhere.stage_change(None, None);
        assert_not_found(store.insert_opportunity(tenant, &elsewhere, &change, WriteOptions::new()).await, "unknown pipeline in the store");
        assert!(matches!(sales.open(d.clone()).await, Err(Error::Duplicate { .. })));

        clock.advance(Duration::days(3));
        let moved = sales.move_to(d.id, 1, "proposal").await.unwrap();
        assert_eq!((moved.version, moved.probability, moved.category), (2, 40, ForecastCategory::BestCase));
        assert_eq!(moved.stage_entered_at, t0() + Duration::days(3));
        assert!(matches!(sales.move_to(d.id, 1, "negotiation").await, Err(Error::Conflict { .. })));
        assert_eq!(sales.move_to(d.id, 2, "nowhere").await.unwrap_err().field(), Some("stage"));
        let mut edited = moved.clone();
        edited.close_date = date(2025, 7, 15);
        edited.probability = 55;
        let edited = sales.update(edited, 2).await.unwrap();
        assert_eq!(store.get_opportunity(tenant, d.id).await.unwrap(), edited);
        let mut sneaky = edited.clone();
        sneaky.stage = StageKey::parse("won").unwrap();
        assert_eq!(sales.update(sneaky, 3).await.unwrap_err().field(), Some("stage"));
        clock.advance(Duration::days(4));
        let won = sales.win(d.id, 3).await.unwrap();
        assert_eq!((won.outcome, won.probability, won.version), (Outcome::Won, 100, 4));
        assert_eq!(won.close_date, (t0() + Duration::days(7)).date_naive());
        assert_eq!(won.won.as_ref().unwrap().lines, edited.lines);
        assert_eq!(store.get_opportunity(tenant, d.id).await.unwrap(), won);
        // Closed: nothing changes until it is reopened.
        assert_eq!(sales.move_to(d.id, 4, "qualify").await.unwrap_err().field(), Some("stage"));
        assert_eq!(sales.lose(d.id, 4, "Price", None).await.unwrap_err().field(), Some("stage"));
        assert_eq!(sales.update(won.clone(), 4).await.unwrap_err().field(), Some("stage"));
        assert_eq!(sales.reopen(d.id, 4, "won").await.unwrap_err().field(), Some("stage"));
        let reopened = sales.reopen(d.id, 4, "negotiation").await.unwrap();
        assert_eq!((reopened.outcome, reopened.probability, reopened.won.is_none()), (Outcome::Open, 70, true));
        assert_eq!(sales.lose(d.id, 5, " ", None).await.unwrap_err().field(), Some("lost_reason"));
        let lost = sales.lose(d.id, 5, "Price too high", Some("Forks & Co")).await.unwrap();
        assert_eq!((lost.outcome, lost.probability, lost.lost_reason.as_deref()), (Outcome::Lost, 0, Some("Price too high")));
        assert_eq!(store.get_opportunity(tenant, d.id).await.unwrap(), lost);

        let h = history(&store, tenant, d.id).await;
        assert_eq!(
            stages(&h),
            vec![(None, "qualify"), (Some("qualify"), "proposal"), (Some("proposal"), "won"), (Some("won"), "negotiation"), (Some("negotiation"), "lost")]
        );
        assert_eq!(h.iter().map(|c| c.version).collect::<Vec<_>>(), vec![1, 2, 4, 5, 6]);
        assert_eq!(h.iter().map(|c| c.probability).collect::<Vec<_>>(), vec![15, 40, 100, 70, 0]);
        assert!(h.iter().all(|c| c.amount == d.amount && c.opportunity == d.id && c.by.is_none()));
        assert_eq!(h[1].at, t0() + Duration::days(3));
        assert!(history(&store, TenantId::new(), d.id).await.is_empty());
        // What KPI evaluation records on a deal reads back: its alert keys, and when its
        // owner got it; the service keeps both out of hosts' hands.
        let mut flagged = lost.clone();
        flagged.alerts.insert(format!("kpi:stalled:{}:1:warning", d.id));
        flagged.owned_since = Some(t0() + Duration::days(9));
        flagged.version = 7;
        store.update_opportunity(tenant, &flagged, 6, &[], WriteOptions::new()).await.unwrap();
        assert_eq!(store.get_opportunity(tenant, d.id).await.unwrap(), flagged);

        // Listings.
        let other = sales.open(deal(&p, ann.id, helper, money("500", "USD"), date(2025, 9, 1))).await.unwrap();
        let ids = |q: OpportunityQuery| {
            let store = store.clone();
            async move {
                collect_pages(1, |page| { let (store, q) = (store.clone(), q.clone()); async move { store.list_opportunities(tenant, &q, &page).await } })
                    .await
                    .into_iter()
                    .map(|d| d.id)
                    .collect::<Vec<_>>()
            }
        };
        assert_eq!(ids(OpportunityQuery::default()).await, vec![d.id, other.id]);
        assert_eq!(ids(OpportunityQuery { owner: Some(helper), ..Default::default() }).await, vec![other.id]);
        assert_eq!(ids(OpportunityQuery { account: Some(acme.id), ..Default::default() }).await, vec![d.id]);
        // Ann is the account of one deal and a contact of the other; Acme only an account.
        assert_eq!(ids(OpportunityQuery { contact: Some(ann.id), ..Default::default() }).await, vec![d.id]);
        assert!(ids(OpportunityQuery { contact: Some(acme.id), ..Default::default() }).await.is_empty());
        assert_eq!(ids(OpportunityQuery { contact: Some(ann.id), account: Some(ann.id), ..Default::default() }).await, Vec::<OpportunityId>::new());
        assert_eq!(ids(OpportunityQuery { outcome: Some(Outcome::Open), ..Default::default() }).await, vec![other.id]);
        assert_eq!(ids(OpportunityQuery { stage: Some("lost".into()), ..Default::default() }).await, vec![d.id]);
        assert_eq!(ids(OpportunityQuery { pipeline: Some(p.id), close_from: Some(date(2025, 8, 1)), ..Default::default() }).await, vec![other.id]);
        assert_eq!(ids(OpportunityQuery { close_to: Some(date(2025, 8, 1)), ..Default::default() }).await, vec![d.id]);
        // Dates beyond the years a deal closes in compare as they should.
        let far = chrono::NaiveDate::from_ymd_opt(20000, 1, 1).unwrap();
        let early = chrono::NaiveDate::from_ymd_opt(-5, 1, 1).unwrap();
        assert_eq!(ids(OpportunityQuery { close_from: Some(early), close_to: Some(far), ..Default::default() }).await, vec![d.id, other.id]);
        assert!(ids(OpportunityQuery { close_from: Some(far), ..Default::default() }).await.is_empty());
        assert!(ids(OpportunityQuery { close_to: Some(early), ..Default::default() }).await.is_empty());
        let everything = ForecastQuery { include_closed: true, ..ForecastQuery::new(early, far) };
        assert_eq!(store.forecast_cells(tenant, &everything).await.unwrap().iter().map(|c| c.deals).sum::<u64>(), 2);
        assert!(store.list_opportunities(TenantId::new(), &OpportunityQuery::default(), &PageRequest::first(10)).await.unwrap().items.is_empty());
        assert_not_found(store.get_opportunity(TenantId::new(), d.id).await, "other tenant");
    }

    /// Winning writes `opportunity.stage_changed` and `opportunity.won` (with the order
    /// snapshot) in the move's transaction, losing `opportunity.lost`; the ERP's order
    /// reference is linked once (again: no change; another: refused; taken by another
    /// deal: Duplicate), and a deal with an order cannot be reopened.
    async fn won_deals_hand_over_an_order_once(store) {
        let (crm, _) = crm_with_events(&store);
        let tenant = TenantId::new();
        let sales = crm.tenant(tenant).sales();
        let p = sales.create_pipeline(sample_pipeline()).await.unwrap();
        let acme = register(&crm, tenant, Customer::organization("Acme").build().unwrap()).await;
        let rep = UserId::new();
        let a = sales.open(deal(&p, acme.id, rep, money("1200", "EUR"), date(2025, 5, 1))).await.unwrap();
        let b = sales.open(deal(&p, acme.id, rep, money("800", "EUR"), date(2025, 5, 1))).await.unwrap();
        let a_won = sales.win(a.id, 1).await.unwrap();
        let b_lost = sales.lose(b.id, 1, "No budget", None).await.unwrap();
        let mut events: Vec<_> = drain_events(&store, tenant).await.into_iter().filter(|e| e.entity.kind == "opportunity").collect();
        events.sort_by_key(|e| e.seq);
        let kinds: Vec<(uuid::Uuid, EventKind)> = events.iter().map(|e| (e.entity.id, e.kind)).collect();
        assert_eq!(
            kinds,
            vec![
                (a.id.as_uuid(), EventKind::OpportunityStageChanged),
                (b.id.as_uuid(), EventKind::OpportunityStageChanged),
                (a.id.as_uuid(), EventKind::OpportunityStageChanged),
                (a.id.as_uuid(), EventKind::OpportunityWon),
                (b.id.as_uuid(), EventKind::OpportunityStageChanged),
                (b.id.as_uuid(), EventKind::OpportunityLost),
            ]
        );
        let snapshot: crm_core::sales::OrderSnapshot = serde_json::from_value(events[3].data.clone()).unwrap();
        assert_eq!(Some(snapshot), a_won.won.clone());
        assert_eq!(events[5].data["lost_reason"], "No budget");
        assert_eq!(events[5].version, b_lost.version);

        let so = ExternalRef::new("erp", "SO-1001").unwrap();
        let linked = sales.link_order(a.id, so.clone()).await.unwrap();
        assert_eq!((linked.version, linked.order.as_ref().map(|o| &o.reference)), (3, Some(&so)));
        assert_eq!(sales.link_order(a.id, so.clone()).await.unwrap(), linked, "linking again changes nothing");
        assert_eq!(store.get_opportunity(tenant, a.id).await.unwrap(), linked);
        assert_eq!(sales.link_order(a.id, ExternalRef::new("erp", "SO-2").unwrap()).await.unwrap_err().field(), Some("order"));
        assert_eq!(sales.link_order(b.id, ExternalRef::new("erp", "SO-3").unwrap()).await.unwrap_err().field(), Some("order"));
        assert_eq!(sales.reopen(a.id, 3, "qualify").await.unwrap_err().field(), Some("order"));
        // Another deal cannot become the same order, even written straight to the store.
        let c = sales.open(deal(&p, acme.id, rep, money("10", "EUR"), date(2025, 5, 1))).await.unwrap();
        let mut c_won = sales.win(c.id, 1).await.unwrap();
        c_won.order = linked.order.clone();
        c_won.version = 3;
        assert!(matches!(store.update_opportunity(tenant, &c_won, 2, &[], WriteOptions::new()).await, Err(Error::Duplicate { .. })));
        assert_eq!(store.get_opportunity(tenant, c.id).await.unwrap().order, None);
        // A stale move writes neither the deal, its history nor its events.
        let pending = store.pending_count(tenant).await.unwrap();
        let mut stale = b_lost.clone();
        stale.version = 9;
        let entry = stale.stage_change(None, None);
        let outbox = vec![OutboxMessage::new(note("stale", Priority::Normal), t0())];
        assert!(matches!(
            store.update_opportunity(tenant, &stale, 1, std::slice::from_ref(&entry), WriteOptions::new().outbox(outbox)).await,
            Err(Error::Conflict { .. })
        ));
        assert_eq!(history(&store, tenant, b.id).await.len(), 2);
        assert_eq!(store.pending_count(tenant).await.unwrap(), pending);
    }

    /// The store's forecast cells equal the reference sums over the deals; the forecast
    /// weighs amounts by probability exactly, per currency, rolls up by any dimension, and
    /// converts at the rate of each deal's close date.
    async fn forecasts_are_exact_per_currency(store) {
        let (crm, _) = crm(&store);
        let tenant = TenantId::new();
        let sales = crm.tenant(tenant).sales();
        let p = sales.create_pipeline(sample_pipeline()).await.unwrap();
        let acme = register(&crm, tenant, Customer::organization("Acme").build().unwrap()).await;
        let (x, y) = (UserId::new(), UserId::new());
        let specs = [
            (x, "333.33", "EUR", date(2025, 1, 15), "qualify"),
            (x, "0.01", "EUR", date(2025, 2, 28), "proposal"),
            (y, "1000", "USD", date(2025, 3, 31), "negotiation"),
            (y, "250.50", "EUR", date(2025, 4, 1), "proposal"),
            (x, "999999.99", "EUR", date(2025, 1, 2), "won"),
            (y, "77", "JPY", date(2025, 12, 31), "negotiation"),
        ];
        let mut deals = Vec::new();
        for (owner, amount, currency, close, stage) in specs {
            let mut d = sales.open(deal(&p, acme.id, owner, money(amount, currency), close)).await.unwrap();
            if stage != "qualify" {
                d = sales.move_to(d.id, 1, stage).await.unwrap();
            }
            if stage == "won" {
                assert_eq!(d.outcome, Outcome::Won);
            }
            deals.push(d);
        }
        let year = ForecastQuery { period: Period::Quarter, ..ForecastQuery::new(date(2025, 1, 1), date(2025, 12, 31)) };
        let open: Vec<_> = deals.iter().filter(|d| year.matches(d)).cloned().collect();
        assert_eq!(open.len(), 5, "the won deal is counted only with include_closed");
        let mut cells = store.forecast_cells(tenant, &year).await.unwrap();
        cells.sort();
        assert_eq!(cells, cells_of(&year, &open).unwrap());
        assert!(cells.iter().all(|c| c.close_date == Period::Quarter.start_of(c.close_date)));
        for period in [Period::Month, Period::Year] {
            for daily in [false, true] {
                let q = ForecastQuery { period, daily, ..year.clone() };
                let mut got = store.forecast_cells(tenant, &q).await.unwrap();
                got.sort();
                assert_eq!(got, cells_of(&q, &open).unwrap(), "{period:?}, daily {daily}");
            }
        }
        let all = ForecastQuery { include_closed: true, ..year.clone() };
        let mut with_closed = store.forecast_cells(tenant, &all).await.unwrap();
        with_closed.sort();
        let counted: Vec<_> = deals.iter().filter(|d| all.matches(d)).cloned().collect();
        assert_eq!(with_closed, cells_of(&all, &counted).unwrap());
        assert!(store.forecast_cells(TenantId::new(), &all).await.unwrap().is_empty());

        let forecast = sales.forecast(&year, None).await.unwrap();
        let totals = forecast.totals().unwrap();
        let eur = Currency::parse("EUR").unwrap();
        let eur_total = totals.rows.iter().find(|r| r.currency == eur).unwrap();
        // 333.33 × 10 % + 0.01 × 40 % + 250.50 × 40 %
        assert_eq!(eur_total.weighted, "33.333".parse::<Decimal>().unwrap() + "0.004".parse::<Decimal>().unwrap() + "100.2".parse::<Decimal>().unwrap());
        assert_eq!((eur_total.deals, eur_total.amount), (3, "583.84".parse().unwrap()));
        let by_owner = forecast.rollup(&[Dimension::Owner]).unwrap();
        assert_eq!(by_owner.rows.len(), 4, "x in EUR; y in EUR, USD and JPY");
        let q1 = forecast.rollup(&[Dimension::Period]).unwrap().rows.into_iter().filter(|r| r.period == Some(date(2025, 1, 1))).count();
        assert_eq!(q1, 2, "EUR and USD close in the first quarter");
        assert_eq!(sales.forecast(&ForecastQuery::new(date(2025, 2, 1), date(2025, 1, 1)), None).await.unwrap_err().field(), Some("to"));

        let rates = RateTable::new();
        let (usd, jpy) = (Currency::parse("USD").unwrap(), Currency::parse("JPY").unwrap());
        rates.set(usd, eur, date(2025, 1, 1), "0.9".parse().unwrap()).unwrap();
        assert_not_found(sales.forecast_in(&year, None, eur, &rates).await, "no JPY rate");
        rates.set(jpy, eur, date(2025, 1, 1), "0.006".parse().unwrap()).unwrap();
        rates.set(usd, eur, date(2025, 4, 1), "0.8".parse().unwrap()).unwrap();
        let converted = sales.forecast_in(&year, None, eur, &rates).await.unwrap().totals().unwrap();
        assert_eq!(converted.rows.len(), 1);
        // USD 1000 closes 2025-03-31 at 0.9 (the 0.8 takes effect later): 900 × 70 %;
        // JPY 77 × 0.006 = 0.462, rounded to 0.46, × 70 %.
        let expected = eur_total.weighted + Decimal::from(630) + "0.322".parse::<Decimal>().unwrap();
        assert_eq!(converted.rows[0].weighted, expected);
        assert_eq!(converted.rows[0].amount, "583.84".parse::<Decimal>().unwrap() + Decimal::from(900) + "0.46".parse::<Decimal>().unwrap());
    }

    /// The store's funnel cells and stage times equal the reference over the deals and
    /// their histories; the funnel counts each step, the share going on, the win rate, the
    /// cycle and the stays; only deals of the pipeline created in the period count.
    async fn funnels_follow_the_stage_histories(store) {
        use crm_core::sales::{funnel_of, FunnelQuery};
        let (crm, clock) = crm(&store);
        let tenant = TenantId::new();
        let sales = crm.tenant(tenant).sales();
        let p = sales.create_pipeline(sample_pipeline()).await.unwrap();
        let other = sales.create_pipeline(sample_pipeline()).await.unwrap();
        let acme = register(&crm, tenant, Customer::organization("Acme").build().unwrap()).await;
        let (x, y) = (UserId::new(), UserId::new());
        let open = |owner: UserId| {
            let sales = sales.clone();
            let d = deal(&p, acme.id, owner, money("100", "EUR"), date(2025, 6, 30));
            async move { sales.open(d).await.unwrap() }
        };
        // A: qualify 1 day, proposal 2 days, won. B: qualify 3 days, lost.
        // C: qualify 1 day, proposal 1 day, negotiation (open). D: opened at proposal, lost.
        let a = open(x).await;
        let b = open(x).await;
        let c = open(y).await;
        let mut d = deal(&p, acme.id, y, money("100", "EUR"), date(2025, 6, 30));
        d.stage = StageKey::parse("proposal").unwrap();
        d.probability = 40;
        d.category = ForecastCategory::BestCase;
        let d = sales.open(d).await.unwrap();
        clock.advance(Duration::days(1));
        sales.move_to(a.id, 1, "proposal").await.unwrap();
        sales.move_to(c.id, 1, "proposal").await.unwrap();
        clock.advance(Duration::days(1));
        sales.move_to(c.id, 2, "negotiation").await.unwrap();
        clock.advance(Duration::days(1));
        sales.win(a.id, 2).await.unwrap();
        sales.lose(b.id, 1, "Budget", None).await.unwrap();
        sales.lose(d.id, 1, "Timing", None).await.unwrap();
        // Outside the query: another pipeline, and a deal created after the period.
        sales.open(deal(&other, acme.id, x, money("1", "EUR"), date(2025, 6, 30))).await.unwrap();
        let late = open(x).await;
        let query = FunnelQuery { pipeline: p.id, from: t0(), to: t0() + Duration::hours(1) };

        let (mut cells, mut times) = store.funnel(tenant, &query, &p).await.unwrap();
        cells.sort();
        times.sort();
        let mut followed = Vec::new();
        for id in [a.id, b.id, c.id, d.id] {
            followed.push((store.get_opportunity(tenant, id).await.unwrap(), history(&store, tenant, id).await));
        }
        let (want_cells, want_times) = funnel_of(&p, followed.iter().map(|(d, h)| (d, h.as_slice()))).unwrap();
        assert_eq!((cells.clone(), times.clone()), (want_cells, want_times));
        assert!(!followed.iter().any(|(d, _)| d.id == late.id));

        let report = sales.funnel(&query, None).await.unwrap();
        let all = &report.all;
        assert_eq!((all.deals, all.won, all.lost), (4, 1, 2));
        assert_eq!(all.win_rate, Some(1.0 / 3.0));
        assert_eq!(all.average_cycle_days, Some(3.0));
        let reached: Vec<u64> = all.steps.iter().map(|s| s.reached).collect();
        assert_eq!(reached, vec![4, 3, 2, 1], "qualify, proposal, negotiation, won");
        let converted: Vec<Option<f64>> = all.steps.iter().map(|s| s.converted).collect();
        assert_eq!(converted, vec![Some(0.75), Some(2.0 / 3.0), Some(0.5), None]);
        // Stays that ended: qualify A 1, B 3, C 1 days; proposal A 2, C 1, D 3 days;
        // negotiation none yet.
        let days: Vec<Option<f64>> = all.steps.iter().map(|s| s.average_days).collect();
        assert_eq!(days, vec![Some(5.0 / 3.0), Some(2.0), None, None]);
        assert_eq!(report.by_owner[&x].deals, 2);
        assert_eq!(report.by_owner[&y].steps[2].reached, 1);
        assert!(report.by_unit.is_empty(), "no organisation given");
        assert_eq!(sales.funnel(&FunnelQuery { to: t0(), ..query.clone() }, None).await.unwrap_err().field(), Some("to"));
        assert!(store.funnel(TenantId::new(), &query, &p).await.unwrap().0.is_empty());
    }
}
