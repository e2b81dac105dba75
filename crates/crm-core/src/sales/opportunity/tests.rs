use chrono::{Duration, TimeZone};

use super::*;
use crate::sales::{ForecastCategory, Stage};

fn pipeline() -> Pipeline {
    Pipeline::new(
        "New business",
        vec![
            Stage::open("qualify", "Qualify", 10, ForecastCategory::Pipeline).unwrap(),
            Stage::open("proposal", "Proposal", 40, ForecastCategory::BestCase).unwrap(),
            Stage::won("won", "Won").unwrap(),
            Stage::lost("lost", "Lost").unwrap(),
        ],
    )
    .unwrap()
}

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 5, 9, 0, 0).unwrap()
}

fn eur(text: &str) -> Money {
    Money::parse(text, "EUR").unwrap()
}

fn deal(p: &Pipeline) -> Opportunity {
    Opportunity::new(
        "Forklifts",
        CustomerId::new(),
        UserId::new(),
        p,
        eur("1000"),
        NaiveDate::from_ymd_opt(2026, 3, 31).unwrap(),
        t0(),
    )
    .unwrap()
}

fn key(k: &str) -> StageKey {
    StageKey::parse(k).unwrap()
}

#[test]
fn lines_sum_to_the_amount_in_one_currency() {
    let p = pipeline();
    let sku = |s: &str| ExternalRef::new("erp", s).unwrap();
    let lines = vec![
        LineItem::new(sku("A"), Decimal::new(25, 1), eur("19.99")).unwrap(), // 49.975 -> 49.98
        LineItem::new(sku("B"), Decimal::from(3), eur("100"))
            .unwrap()
            .discount(Decimal::new(125, 1))
            .unwrap(), // 262.50
    ];
    let d = deal(&p).with_lines(lines.clone()).unwrap();
    assert_eq!(d.amount, eur("312.48"));
    d.validate(&p).unwrap();
    let mut tampered = d.clone();
    tampered.amount = eur("312.49");
    assert_eq!(tampered.validate(&p).unwrap_err().field(), Some("amount"));
    let usd = LineItem::new(sku("C"), Decimal::ONE, Money::parse("5", "USD").unwrap()).unwrap();
    assert_eq!(
        deal(&p).with_lines(vec![usd]).unwrap_err().field(),
        Some("lines[0].unit_price")
    );
    assert_eq!(
        LineItem::new(sku("D"), Decimal::ZERO, eur("1"))
            .unwrap_err()
            .field(),
        Some("quantity")
    );
    assert_eq!(
        LineItem::new(sku("D"), Decimal::ONE, eur("1"))
            .unwrap()
            .discount(Decimal::from(101))
            .unwrap_err()
            .field(),
        Some("discount")
    );
    // The largest quantity of the largest price is beyond any amount: an error, not a panic.
    let huge = LineItem::new(sku("E"), LineItem::MAX_QUANTITY, eur("1000000000000000"));
    assert_eq!(huge.unwrap_err().field(), Some("amount"));
}

#[test]
fn stages_set_probability_and_closing_locks_the_deal() {
    let p = pipeline();
    let mut d = deal(&p);
    assert_eq!(
        (d.probability, d.category),
        (10, ForecastCategory::Pipeline)
    );
    let at = t0() + Duration::days(3);
    let from = d.enter(&p, &key("proposal"), at).unwrap();
    assert_eq!(from, key("qualify"));
    assert_eq!((d.probability, d.stage_entered_at), (40, at));
    assert_eq!(
        d.enter(&p, &key("proposal"), at).unwrap_err().field(),
        Some("stage")
    );
    assert_eq!(
        d.enter(&p, &key("nope"), at).unwrap_err().field(),
        Some("stage")
    );
    assert_eq!(
        d.enter(&p, &key("lost"), at).unwrap_err().field(),
        Some("lost_reason")
    );
    let won_at = t0() + Duration::days(10);
    d.enter(&p, &key("won"), won_at).unwrap();
    assert_eq!(
        (d.outcome, d.probability, d.closed_at),
        (Outcome::Won, 100, Some(won_at))
    );
    assert_eq!(d.close_date, won_at.date_naive());
    let snapshot = d.won.clone().unwrap();
    assert_eq!((snapshot.amount, snapshot.account), (d.amount, d.account));
    d.validate(&p).unwrap();
    assert_eq!(
        d.enter(&p, &key("qualify"), won_at).unwrap_err().field(),
        Some("stage")
    );
    assert_eq!(
        d.reopen(&p, &key("won"), won_at).unwrap_err().field(),
        Some("stage")
    );
    d.order = Some(OrderLink {
        reference: ExternalRef::new("erp", "SO-1").unwrap(),
        linked_at: won_at,
    });
    assert_eq!(
        d.reopen(&p, &key("qualify"), won_at).unwrap_err().field(),
        Some("order")
    );
    d.order = None;
    d.reopen(&p, &key("qualify"), won_at).unwrap();
    assert_eq!(
        (d.outcome, d.won.is_none(), d.closed_at),
        (Outcome::Open, true, None)
    );
    d.validate(&p).unwrap();
    d.lost_reason = Some("Price".into());
    d.enter(&p, &key("lost"), won_at).unwrap();
    assert_eq!((d.outcome, d.probability), (Outcome::Lost, 0));
    d.validate(&p).unwrap();
    let change = d.stage_change(Some(key("qualify")), None);
    assert_eq!(
        (change.to, change.outcome, change.probability),
        (key("lost"), Outcome::Lost, 0)
    );
}

#[test]
fn validation_names_each_field() {
    let p = pipeline();
    let field = |f: &dyn Fn(&mut Opportunity)| {
        let mut d = deal(&p);
        f(&mut d);
        d.validate(&p).unwrap_err().field().map(str::to_string)
    };
    assert_eq!(
        field(&|d| d.probability = 101).as_deref(),
        Some("probability")
    );
    assert_eq!(field(&|d| d.amount = eur("-1")).as_deref(), Some("amount"));
    assert_eq!(field(&|d| d.stage = key("nope")).as_deref(), Some("stage"));
    assert_eq!(
        field(&|d| d.outcome = Outcome::Won).as_deref(),
        Some("outcome")
    );
    assert_eq!(
        field(&|d| d.pipeline = PipelineId::new()).as_deref(),
        Some("pipeline")
    );
    assert_eq!(
        field(&|d| d.lost_reason = Some("x".into())).as_deref(),
        Some("lost_reason")
    );
    assert_eq!(
        field(&|d| d.source = Some(" x".into())).as_deref(),
        Some("source")
    );
    assert_eq!(
        field(&|d| d.competitor = Some("a\u{7}".into())).as_deref(),
        Some("competitor")
    );
    assert_eq!(
        field(&|d| d.closed_at = Some(t0())).as_deref(),
        Some("closed_at")
    );
    assert_eq!(
        field(&|d| d.close_date = NaiveDate::from_ymd_opt(1800, 1, 1).unwrap()).as_deref(),
        Some("close_date")
    );
    let c = CustomerId::new();
    assert_eq!(
        field(&|d| {
            d.contacts = vec![
                DealContact {
                    customer: c,
                    role: ContactRole::Billing,
                },
                DealContact {
                    customer: c,
                    role: ContactRole::Technical,
                },
            ]
        })
        .as_deref(),
        Some("contacts[1]")
    );
    let u = UserId::new();
    assert_eq!(field(&|d| d.team = vec![u, u]).as_deref(), Some("team[1]"));
    assert_eq!(
        field(&|d| d.team = (0..=MAX_TEAM).map(|_| UserId::new()).collect()).as_deref(),
        Some("team")
    );
    // Four-decimal currencies beyond 2^63 of their smallest unit are refused.
    assert_eq!(
        field(&|d| d.amount = Money::parse("1000000000000000", "CLF").unwrap()).as_deref(),
        Some("amount")
    );
    let same = deal(&p)
        .with_contact(c, ContactRole::Billing)
        .with_contact(c, ContactRole::DecisionMaker);
    assert_eq!(
        same.contacts,
        vec![DealContact {
            customer: c,
            role: ContactRole::DecisionMaker
        }]
    );
}

#[test]
fn the_weighted_amount_is_exact() {
    let p = pipeline();
    let mut d = deal(&p);
    d.amount = eur("333.33");
    d.probability = 33;
    assert_eq!(d.weighted_amount(), Decimal::new(1_099_989, 4));
    assert_eq!(d.amount_minor(), Some(33_333));
}

#[test]
fn merging_names_the_survivor_once() {
    let p = pipeline();
    let (a, b, survivor) = (CustomerId::new(), CustomerId::new(), CustomerId::new());
    let mut d = deal(&p)
        .with_contact(survivor, ContactRole::Billing)
        .with_contact(a, ContactRole::DecisionMaker)
        .with_contact(b, ContactRole::Technical);
    d.account = a;
    assert!(d.merge_parties(&[a, b], survivor));
    assert_eq!(d.account, survivor);
    assert_eq!(
        d.contacts,
        vec![DealContact {
            customer: survivor,
            role: ContactRole::Billing
        }]
    );
    d.validate(&p).unwrap();
    assert!(!d.merge_parties(&[a], survivor));
    let mut e = deal(&p).with_contact(a, ContactRole::Influencer);
    assert!(e.merge_parties(&[a], survivor));
    assert_eq!(
        e.contacts,
        vec![DealContact {
            customer: survivor,
            role: ContactRole::Influencer
        }]
    );
}
