"""The bindings over PostgreSQL: records, money, cases, KPI rules, tasks and events read back
equal through a real server (see conftest.py)."""

import collections
import datetime
import decimal
import uuid
from typing import Any, Dict, List

import pytest

from crm_core import ConflictError, Crm, ValidationError

UTC = datetime.timezone.utc
D = decimal.Decimal


def test_postgres_round_trips(postgres_url: str) -> None:
    crm = Crm.open_postgres(postgres_url, events=True)
    assert "postgres" in repr(crm)
    tenant = crm.tenant(uuid.uuid4())
    owner = uuid.uuid4()
    ann = tenant.register_customer(
        "Ann Lee",
        emails=["ann@example.com"],
        phones=["+49 30 1234567"],
        lifecycle="active",
        tags=["vip"],
        owner=owner,
        attributes={"since": datetime.date(2020, 1, 2), "limit": (D("2500.00"), "EUR"), "visits": 3},
        external_id=("erp", "K-1"),
    )
    assert tenant.get_customer(ann.id) == ann

    berlin = datetime.timezone(datetime.timedelta(hours=1))
    orders = [
        {
            "customer": ann.id,
            "channel": "web",
            "kind": "purchase",
            "occurred_at": datetime.datetime(2026, 3, day, 23, 30, tzinfo=berlin),
            "amount": D("19.99") * day,
            "currency": "EUR",
            "attributes": {"items": day},
            "key": ("shop", f"o-{day}"),
        }
        for day in range(1, 11)
    ]
    assert tenant.log_batch(orders).inserted == 10
    assert tenant.log_batch(orders).duplicates == 10
    bad = orders + [dict(orders[0], key=("shop", "o-99"), currency="EURO")]
    with pytest.raises(ValidationError) as caught:
        tenant.log_batch(bad)
    assert caught.value.field == "batch[10].currency"

    page = tenant.timeline(ann.id, limit=4)
    seen = list(page.items)
    while page.next is not None:
        page = tenant.timeline(ann.id, limit=4, after=page.next)
        seen.extend(page.items)
    assert len(seen) == 10
    newest = seen[0]
    assert newest.occurred_at == datetime.datetime(2026, 3, 10, 22, 30, tzinfo=UTC)
    assert (newest.amount, newest.currency, newest.attributes) == (D("199.90"), "EUR", {"items": D(10)})
    profile = tenant.profile(ann.id)
    assert profile.revenue == {"EUR": sum((D("19.99") * d for d in range(1, 11)), D(0))}

    changed = tenant.update_customer(ann, lifecycle="at_risk")
    with pytest.raises(ConflictError):
        tenant.update_customer(ann, lifecycle="churned")
    assert tenant.get_customer(ann.id) == changed

    tenant.add_kpi_rule(
        {
            "key": "first-reply-1h",
            "name": "First reply within an hour",
            "metric": {"case": {"metric": "first_reply", "target_secs": 3600, "warn_fraction": 0.5}},
            "compliance_goal": 0.9,
            "on_breach": ["notify_assignee"],
        }
    )
    case = tenant.open_case(ann.id, "Broken hinge", kind="complaint", assignee=owner)
    assert tenant.get_case(case.id) == case
    report = tenant.evaluate_kpis(now=case.opened_at + datetime.timedelta(hours=2))
    assert report["breaches"] == 1
    lines, _ = tenant.scorecard(
        case.opened_at - datetime.timedelta(hours=1),
        case.opened_at + datetime.timedelta(hours=1),
        now=case.opened_at + datetime.timedelta(hours=2),
    )
    assert [(line.who, line.breached) for line in lines] == [(owner, 1)]
    task = tenant.create_task("Call back", owner, case.opened_at, case=case.id)
    assert tenant.get_task(task.id) == task
    assert [t.id for t in tenant.remind_due()] == [task.id]

    staff = {owner: {"name": "Olga", "email": "olga@example.com"}}
    sent: List[Dict[str, Any]] = []
    events: List[Dict[str, Any]] = []
    counts = tenant.dispatch(sent.append, events=events.append, staff=staff.get)
    assert (counts["sent"], counts["dead"]) == (15, 0)
    # The case.breached event is stamped at the evaluation's instant, two hours ahead: it
    # waits for it.
    assert tenant.pending() == 1
    assert sorted(e["notification"]["template"] for e in sent) == ["kpi.breach", "task.due"]
    kinds = collections.Counter(e["kind"] for e in events)
    assert kinds == {
        "customer.created": 1,
        "customer.updated": 1,
        "interaction.logged": 10,
        "case.opened": 1,
    }

    again = Crm.open_postgres(postgres_url).tenant(tenant.id)
    assert again.get_customer(ann.id) == changed
