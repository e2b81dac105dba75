"""The bindings from Python: every bound call, the exceptions, money, time zones, threads."""

import datetime
import decimal
import threading
import uuid
from pathlib import Path
from typing import Any, Dict, List, Tuple

import pytest

from crm_core import (
    ConflictError,
    DeliveryRefused,
    Crm,
    CrmError,
    Customer,
    NotFoundError,
    Tenant,
    ValidationError,
)

UTC = datetime.timezone.utc
D = decimal.Decimal


@pytest.fixture
def tenant() -> Tenant:
    return Crm.open_in_memory().tenant(uuid.uuid4())


def at(day: int, hour: int = 12) -> datetime.datetime:
    return datetime.datetime(2026, 3, day, hour, 0, tzinfo=UTC)


def test_register_get_and_read_back_every_field(tenant: Tenant) -> None:
    owner = uuid.uuid4()
    ann = tenant.register_customer(
        "Ann Lee",
        emails=["ann@example.com", "a.lee@example.org"],
        phones=["+49 30 1234567"],
        lifecycle="active",
        tags=["vip", "newsletter"],
        owner=owner,
        attributes={
            "since": datetime.date(2020, 1, 2),
            "score": D("1.50"),
            "visits": 12,
            "gold": True,
            "name_de": "Anna",
            "hobbies": ["chess", "sailing"],
            "limit": (D("2500.00"), "EUR"),
        },
        external_id=("erp", "K-1"),
    )
    assert isinstance(ann.id, uuid.UUID)
    assert ann.version == 1
    assert ann.created_at.tzinfo is not None
    back = tenant.get_customer(ann.id)
    assert back == ann
    assert back.name == "Ann Lee"
    assert back.kind == "person"
    assert back.emails == ["ann@example.com", "a.lee@example.org"]
    assert back.phones == ["+49301234567"]
    assert back.lifecycle == "active"
    assert back.tags == ["newsletter", "vip"]
    assert back.owner == owner
    assert back.attributes == {
        "since": datetime.date(2020, 1, 2),
        "score": D("1.50"),
        "visits": D(12),
        "gold": True,
        "name_de": "Anna",
        "hobbies": ["chess", "sailing"],
        "limit": (D("2500.00"), "EUR"),
    }
    assert "Ann Lee" in repr(back) and "version=1" in repr(back)
    org = tenant.register_customer("Acme GmbH", kind="organization")
    assert org.kind == "organization"


def test_bad_input_names_the_field_and_writes_nothing(tenant: Tenant) -> None:
    cases: List[Dict[str, Any]] = [
        {"emails": ["not-an-address"]},
        {"phones": ["12"]},
        {"lifecycle": "happy"},
        {"kind": "robot"},
        {"attributes": {"price": 1.5}},
        {"attributes": {"when": datetime.datetime.now(UTC)}},
        {"attributes": {"limit": (D("1"), "XXX1")}},
    ]
    fields = []
    for extra in cases:
        with pytest.raises(ValidationError) as caught:
            tenant.register_customer("Bob", **extra)
        fields.append(caught.value.field)
        assert isinstance(caught.value, CrmError)
        assert caught.value.reason
    assert fields[:4] == ["emails[0]", "phones[0]", "lifecycle", "kind"]
    assert fields[4] == "attributes.price"
    assert tenant.search_customers() == []
    with pytest.raises(ValidationError) as caught:
        tenant.register_customer("")
    assert caught.value.field == "name"


def test_update_checks_the_version(tenant: Tenant) -> None:
    ann = tenant.register_customer("Ann", tags=["a"], attributes={"x": "1"})
    newer = tenant.update_customer(
        ann, name="Ann Smith", lifecycle="active", tags=["b"], attributes={"x": None, "y": 2}
    )
    assert newer.version == ann.version + 1
    assert (newer.name, newer.lifecycle, newer.tags) == ("Ann Smith", "active", ["b"])
    assert newer.attributes == {"y": D(2)}
    with pytest.raises(ConflictError) as caught:
        tenant.update_customer(ann, name="Stale")
    assert (caught.value.expected, caught.value.actual) == (1, 2)
    assert tenant.get_customer(ann.id).name == "Ann Smith"


def test_not_found(tenant: Tenant) -> None:
    missing = uuid.uuid4()
    with pytest.raises(NotFoundError) as caught:
        tenant.get_customer(missing)
    assert caught.value.entity == "customer"
    assert caught.value.id == str(missing)


def test_search_and_transfer(tenant: Tenant) -> None:
    (maria, jonas) = (uuid.uuid4(), uuid.uuid4())
    for i in range(12):
        tenant.register_customer(
            f"Mei {i:02}", owner=maria if i % 2 else jonas, tags=["vip"] if i < 3 else []
        )
    tenant.register_customer("Other", emails=["other@example.com"])
    assert len(tenant.search_customers()) == 13
    assert len(tenant.search_customers(limit=5)) == 5
    assert [c.name for c in tenant.search_customers(name_prefix="mei 1")] == [
        "Mei 10",
        "Mei 11",
    ]
    assert len(tenant.search_customers(tag="vip")) == 3
    assert [c.name for c in tenant.search_customers(email="OTHER@example.com")] == ["Other"]
    assert len(tenant.search_customers(owner=maria)) == 6
    assert tenant.transfer_customers(maria, jonas, reason="leaving") == 6
    assert tenant.search_customers(owner=maria) == []
    assert len(tenant.search_customers(owner=jonas)) == 12


def test_money_round_trips_exactly(tenant: Tenant) -> None:
    ann = tenant.register_customer("Ann")
    amounts = [D("0.01"), D("19.90"), D("1234567.89"), D("0.10"), D(3)]
    for n, amount in enumerate(amounts):
        tenant.log_interaction(
            ann.id, "web", "purchase", occurred_at=at(n + 1), amount=amount, currency="EUR"
        )
    tenant.log_interaction(
        ann.id, "store", "purchase", occurred_at=at(9), amount=D("5.5"), currency="USD"
    )
    page = tenant.timeline(ann.id, limit=10)
    stored = [i.amount for i in page.items if i.currency == "EUR" and i.amount is not None]
    assert sorted(stored) == sorted(amounts)
    assert all(isinstance(a, decimal.Decimal) for a in stored)
    profile = tenant.profile(ann.id)
    assert profile.revenue == {"EUR": sum(amounts, D(0)), "USD": D("5.5")}
    assert str(profile.revenue["EUR"]) == "1234590.90"
    assert "19.90" in [str(a) for a in stored]
    assert profile.purchase_count == 6
    with pytest.raises(ValidationError) as caught:
        tenant.log_interaction(
            ann.id, "web", "purchase", occurred_at=at(1), amount=0.1, currency="EUR"  # type: ignore[arg-type]
        )
    assert caught.value.field == "amount"
    with pytest.raises(ValidationError):
        tenant.log_interaction(ann.id, "web", "purchase", occurred_at=at(1), amount=D(1))


def test_time_zones_are_kept_as_instants(tenant: Tenant) -> None:
    ann = tenant.register_customer("Ann")
    berlin = datetime.timezone(datetime.timedelta(hours=1))
    tokyo = datetime.timezone(datetime.timedelta(hours=9))
    tenant.log_interaction(
        ann.id, "phone", "call", occurred_at=datetime.datetime(2026, 3, 1, 10, 0, tzinfo=berlin)
    )
    tenant.log_interaction(
        ann.id, "phone", "call", occurred_at=datetime.datetime(2026, 3, 1, 17, 0, tzinfo=tokyo)
    )
    items = tenant.timeline(ann.id).items
    # 10:00 in Berlin is 09:00 UTC; 17:00 in Tokyo is 08:00 UTC: newest first.
    assert [i.occurred_at for i in items] == [
        datetime.datetime(2026, 3, 1, 9, 0, tzinfo=UTC),
        datetime.datetime(2026, 3, 1, 8, 0, tzinfo=UTC),
    ]
    assert all(i.occurred_at.utcoffset() == datetime.timedelta(0) for i in items)
    with pytest.raises(ValidationError) as caught:
        tenant.log_interaction(
            ann.id, "phone", "call", occurred_at=datetime.datetime(2026, 3, 1, 10, 0)
        )
    assert caught.value.field == "occurred_at"
    assert len(tenant.timeline(ann.id).items) == 2
    tenant.log_interaction(
        ann.id, "web", "purchase", occurred_at=datetime.datetime(2026, 3, 2, 12, 0, tzinfo=tokyo),
        amount=D("5"), currency="EUR",
    )
    profile = tenant.profile(ann.id)
    assert (profile.interaction_count, profile.purchase_count) == (3, 1)
    assert profile.first_contact_at == datetime.datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
    assert profile.last_contact_at == datetime.datetime(2026, 3, 2, 3, 0, tzinfo=UTC)
    assert profile.last_purchase_at == profile.last_contact_at
    changed = tenant.update_customer(ann, name="Ann Lee")
    assert changed.updated_at >= ann.updated_at and changed.created_at == ann.created_at


def test_interaction_fields_and_idempotent_keys(tenant: Tenant) -> None:
    ann = tenant.register_customer("Ann")
    agent = uuid.uuid4()
    first = tenant.log_interaction(
        ann.id,
        "email",
        "complaint",
        occurred_at=at(2),
        direction="inbound",
        handled_by=agent,
        subject="Late delivery",
        key=("helpdesk", "T-1"),
    )
    assert (first.inserted, first.duplicates) == (1, 0)
    again = tenant.log_interaction(
        ann.id, "email", "complaint", occurred_at=at(2), key=("helpdesk", "T-1")
    )
    assert (again.inserted, again.duplicates) == (0, 1)
    (i,) = tenant.timeline(ann.id).items
    assert (i.channel, i.kind, i.direction) == ("email", "complaint", "inbound")
    assert (i.handled_by, i.subject, i.key) == (agent, "Late delivery", ("helpdesk", "T-1"))
    assert i.customer == ann.id and isinstance(i.id, uuid.UUID)
    assert i.amount is None and i.currency is None
    assert (i.body, i.duration_secs, i.wait_secs, i.case, i.attributes) == (None, None, None, None, {})
    assert tenant.profile(ann.id).complaint_count == 1
    with pytest.raises(ValidationError) as caught:
        tenant.log_interaction(ann.id, "pigeon", "call", occurred_at=at(1))
    assert caught.value.field == "channel"

    case = tenant.open_case(ann.id, "Late delivery")
    tenant.log_interaction(
        ann.id,
        "phone",
        "call",
        occurred_at=at(3),
        body="Promised a call back on Friday.",
        duration_secs=245,
        wait_secs=38,
        case=case.id,
        attributes={"survey": D("4.5"), "queue": "billing"},
    )
    call = tenant.timeline(ann.id).items[0]
    assert (call.body, call.duration_secs, call.wait_secs, call.case) == (
        "Promised a call back on Friday.",
        245,
        38,
        case.id,
    )
    assert call.attributes == {"survey": D("4.5"), "queue": "billing"}
    bad: List[Tuple[Dict[str, Any], str]] = [
        ({"wait_secs": -1}, "wait_secs"),
        ({"duration_secs": "long"}, "duration_secs"),
        ({"attributes": {"score": 1.5}}, "attributes.score"),
        ({"attributes": ["x"]}, "attributes"),
        ({"case": "c-1"}, "case"),
    ]
    for kwargs, field in bad:
        with pytest.raises(ValidationError) as caught:
            tenant.log_interaction(ann.id, "phone", "call", occurred_at=at(4), **kwargs)
        assert caught.value.field == field
    assert len(tenant.timeline(ann.id).items) == 2


def test_log_batch_is_all_or_nothing(tenant: Tenant) -> None:
    ann = tenant.register_customer("Ann")
    good = [
        {
            "customer": ann.id,
            "channel": "web",
            "kind": "purchase",
            "occurred_at": at(d),
            "amount": D("10.00"),
            "currency": "EUR",
            "key": ("shop", f"o{d}"),
        }
        for d in range(1, 6)
    ]
    bad = good + [dict(good[0], key=("shop", "o9"), amount=D("-1"))]
    bad[-1]["occurred_at"] = datetime.datetime(2026, 3, 1)
    with pytest.raises(ValidationError) as caught:
        tenant.log_batch(bad)
    assert caught.value.field == "batch[5].occurred_at"
    assert tenant.timeline(ann.id).items == []
    missing = [{k: v for k, v in good[0].items() if k != "kind"}]
    with pytest.raises(ValidationError) as caught:
        tenant.log_batch(missing)
    assert caught.value.field == "batch[0].kind"
    misspelt = [dict(good[0], ammount=D("1"))]
    with pytest.raises(ValidationError) as caught:
        tenant.log_batch(misspelt)
    assert caught.value.field == "batch[0].ammount"
    report = tenant.log_batch(good)
    assert (report.inserted, report.duplicates) == (5, 0)
    assert tenant.log_batch(good).duplicates == 5
    assert tenant.profile(ann.id).revenue == {"EUR": D("50.00")}


def test_timeline_pages(tenant: Tenant) -> None:
    ann = tenant.register_customer("Ann")
    tenant.log_batch(
        [
            {"customer": ann.id, "channel": "phone", "kind": "call", "occurred_at": at(d)}
            for d in range(1, 8)
        ]
    )
    seen: List[datetime.datetime] = []
    after = None
    while True:
        page = tenant.timeline(ann.id, limit=3, after=after)
        seen.extend(i.occurred_at for i in page.items)
        if page.next is None:
            break
        after = page.next
    assert seen == [at(d) for d in range(7, 0, -1)]
    with pytest.raises(ValidationError):
        tenant.timeline(ann.id, limit=0)


def test_tenants_are_isolated() -> None:
    crm = Crm.open_in_memory()
    (a, b) = (crm.tenant(uuid.uuid4()), crm.tenant(uuid.uuid4()))
    ann = a.register_customer("Ann")
    with pytest.raises(NotFoundError):
        b.get_customer(ann.id)
    assert b.search_customers() == []


def test_a_file_database_keeps_its_data(tmp_path: Path) -> None:
    path = tmp_path / "crm.db"
    tenant_id = uuid.uuid4()
    ann = Crm.open_sqlite(path).tenant(tenant_id).register_customer("Ann")
    again = Crm.open_sqlite(str(path)).tenant(tenant_id)
    assert again.get_customer(ann.id).name == "Ann"


def test_threads_log_at_once(tenant: Tenant) -> None:
    customers: List[Customer] = [tenant.register_customer(f"C{i}") for i in range(4)]
    errors: List[BaseException] = []

    def work(n: int) -> None:
        try:
            c = customers[n]
            for k in range(25):
                tenant.log_interaction(
                    c.id,
                    "web",
                    "purchase",
                    occurred_at=at(1 + k % 28),
                    amount=D("1.00"),
                    currency="EUR",
                    key=("threads", f"{n}-{k}"),
                )
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    for c in customers:
        profile = tenant.profile(c.id)
        assert profile.purchase_count == 25
        assert profile.revenue == {"EUR": D("25.00")}


def test_open_postgres_refuses_a_bad_connection_string() -> None:
    with pytest.raises(CrmError):
        Crm.open_postgres("this is not a connection string")


def shop(tenant: Tenant) -> List[Customer]:
    """Sixty customers buying at different rates over 2025, some stopping mid-year."""
    customers = [tenant.register_customer(f"Buyer {n:02}") for n in range(60)]
    batch: List[Dict[str, Any]] = []
    start = datetime.datetime(2025, 1, 3, 10, 0, tzinfo=UTC)
    for n, c in enumerate(customers):
        every = 7 + (n % 6) * 9
        last = 360 if n % 4 else 150
        for k, day in enumerate(range(n % 20, last, every)):
            batch.append(
                {
                    "customer": c.id,
                    "channel": "web",
                    "kind": "purchase",
                    "occurred_at": start + datetime.timedelta(days=day),
                    "amount": D(10 + (n % 7) * 5) + D("0.99"),
                    "currency": "EUR",
                    "key": ("shop", f"{n}-{k}"),
                }
            )
    tenant.log_batch(batch)
    return customers


def test_rfm_and_abc_classes(tenant: Tenant) -> None:
    customers = shop(tenant)
    assert tenant.value_classes(customers[0].id) is None
    assert tenant.classify(datetime.date(2025, 12, 31)) == 60
    classes = [tenant.value_classes(c.id) for c in customers]
    assert all(c is not None for c in classes)
    for c in classes:
        assert c is not None
        assert 1 <= c.r <= 5 and 1 <= c.f <= 5 and 1 <= c.m <= 5
        assert c.abc in ("A", "B", "C") and c.segment
        assert c.as_of == datetime.date(2025, 12, 31)
    assert {c.abc for c in classes if c is not None} == {"A", "B", "C"}
    with pytest.raises(ValidationError) as caught:
        tenant.classify(datetime.date(2025, 12, 31), currency="EURO")
    assert caught.value.field == "currency"


def test_clv_scores(tenant: Tenant) -> None:
    customers = shop(tenant)
    with pytest.raises(ValidationError) as caught:
        Crm.open_in_memory().tenant(uuid.uuid4()).score(datetime.date(2025, 12, 31))
    assert caught.value.field == "purchases"
    assert tenant.score(datetime.date(2025, 12, 31)) == 60
    scores = [tenant.value_scores(c.id) for c in customers]
    for s in scores:
        assert s is not None
        assert 0.0 <= s.p_alive <= 1.0
        assert s.expected_purchases_90d >= 0.0
        assert isinstance(s.predicted_clv, decimal.Decimal) and s.predicted_clv >= 0
        assert s.currency == "EUR" and s.scored_at.tzinfo is not None
    # Those who stopped buying in June are less likely alive than those who went on.
    stopped = [s.p_alive for n, s in enumerate(scores) if n % 4 == 0 and s is not None]
    going = [s.p_alive for n, s in enumerate(scores) if n % 4 and s is not None]
    assert sum(stopped) / len(stopped) < sum(going) / len(going)


def test_segments_by_rule_text(tenant: Tenant) -> None:
    customers = shop(tenant)
    count, first = tenant.preview_segment('revenue >= 300 and lifecycle = "lead"', limit=5)
    assert count > 0 and len(first) == min(5, count)
    segment = tenant.create_segment("Big buyers", "revenue >= 300")
    members = tenant.segment_members(segment)
    big = {c.id for c in customers if tenant.profile(c.id).revenue["EUR"] >= 300}
    assert set(members) == big
    ann = customers[0]
    tenant.log_interaction(
        ann.id, "web", "purchase", occurred_at=at(3), amount=D("1000.00"), currency="EUR"
    )
    entered, left, total = tenant.refresh_segment(segment)
    assert entered == ([] if ann.id in big else [ann.id]) and left == []
    assert total == len(big | {ann.id})
    with pytest.raises(ValidationError) as caught:
        tenant.preview_segment("revenue >=")
    assert caught.value.field == "rule" and "column" in caught.value.reason
    with pytest.raises(ValidationError):
        tenant.preview_segment("shoe_size > 40")
    with pytest.raises(NotFoundError):
        tenant.segment_members(uuid.uuid4())


def test_export_and_erase(tenant: Tenant) -> None:
    ann = tenant.register_customer("Ann Lee", emails=["ann@example.com"])
    tenant.log_interaction(ann.id, "phone", "call", occurred_at=at(2))
    export = tenant.export_customer(ann.id)
    assert export["customer"]["id"] == str(ann.id)
    assert export["customer"]["name"] == "Ann Lee"
    assert len(export["interactions"]) == 1
    changed = tenant.update_customer(ann, lifecycle="active")
    with pytest.raises(ConflictError):
        tenant.erase_customer(ann.id, ann.version)
    assert tenant.get_customer(ann.id).name == "Ann Lee"
    erased = tenant.erase_customer(ann.id, changed.version)
    assert erased.name != "Ann Lee" and erased.emails == []
    assert tenant.search_customers(email="ann@example.com") == []


def test_notifications_through_a_python_callable() -> None:
    tenant = Crm.open_in_memory().tenant(uuid.uuid4())
    ann = tenant.register_customer("Ann Lee", emails=["ann@example.com"])
    bob = tenant.register_customer("Bob", emails=["bob@example.com"])
    assert tenant.notify_customer(ann.id, "welcome", "welcome-ann", data={"plan": "gold"}) == 1
    assert tenant.notify_customer(ann.id, "welcome", "welcome-ann") == 0
    tenant.notify_customer(bob.id, "welcome", "welcome-bob")
    assert tenant.pending() == 2
    received: List[Dict[str, Any]] = []
    failed_once: List[str] = []

    def deliver(envelope: Dict[str, Any]) -> None:
        to = envelope["to"]["email"]
        if to == "bob@example.com" and not failed_once:
            failed_once.append(to)
            raise ConnectionError("the mail server is down")
        received.append(envelope)

    report = tenant.dispatch(deliver)
    assert report == {"sent": 1, "retried": 1, "dead": 0}
    (first,) = received
    assert first["to"]["email"] == "ann@example.com" and first["to"]["name"] == "Ann Lee"
    assert first["notification"]["template"] == "welcome"
    assert first["notification"]["data"] == {"plan": "gold"}
    assert tenant.pending() == 1, "Bob's message waits for its retry"

    def refuse(envelope: Dict[str, Any]) -> None:
        raise DeliveryRefused("no such mailbox")

    other = Crm.open_in_memory().tenant(uuid.uuid4())
    carl = other.register_customer("Carl", emails=["carl@example.com"])
    other.notify_customer(carl.id, "welcome", "w")
    assert other.dispatch(refuse) == {"sent": 0, "retried": 0, "dead": 1}
    assert other.pending() == 0


def test_domain_events_to_a_python_callable() -> None:
    tenant = Crm.open_in_memory(events=True).tenant(uuid.uuid4())
    ann = tenant.register_customer("Ann Lee")
    tenant.update_customer(ann, lifecycle="active")
    tenant.log_interaction(ann.id, "phone", "call", occurred_at=at(2))
    events: List[Dict[str, Any]] = []
    report = tenant.dispatch(lambda envelope: None, events=events.append)
    assert report["sent"] == 3
    assert [e["kind"] for e in events] == [
        "customer.created",
        "customer.updated",
        "interaction.logged",
    ]
    assert all(e["entity"]["id"] == str(ann.id) for e in events[:2])
    assert [e["seq"] for e in events] == sorted(e["seq"] for e in events)
    assert tenant.pending() == 0
