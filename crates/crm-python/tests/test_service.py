"""Cases, KPI rules and their evaluation, scorecards, tasks and reminders, staff notices."""

import datetime
import uuid
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple

import pytest

from crm_core import (
    Case,
    ConflictError,
    Crm,
    DuplicateError,
    NotFoundError,
    Tenant,
    ValidationError,
)

UTC = datetime.timezone.utc
HOUR = datetime.timedelta(hours=1)

ANN, BOB, LEAD = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
TEAM = uuid.uuid4()
STAFF: Dict[uuid.UUID, Mapping[str, Any]] = {
    ANN: {"name": "Ann", "email": "ann@example.com", "team": TEAM, "team_lead": LEAD},
    BOB: {"name": "Bob", "email": "bob@example.com", "team": TEAM, "team_lead": LEAD},
    LEAD: {"name": "Lee", "email": "lee@example.com", "locale": "de"},
}

FIRST_REPLY: Dict[str, Any] = {
    "key": "first-reply-1h",
    "name": "First reply within an hour",
    "metric": {"case": {"metric": "first_reply", "target_secs": 3600, "warn_fraction": 0.5}},
    "compliance_goal": 0.9,
    "on_warning": ["notify_assignee"],
    "on_breach": ["notify_team_lead"],
}


@pytest.fixture
def tenant() -> Tenant:
    return Crm.open_in_memory().tenant(uuid.uuid4())


def now() -> datetime.datetime:
    return datetime.datetime.now(UTC)


def sent(tenant: Tenant, staff: Optional[Mapping[uuid.UUID, Mapping[str, Any]]] = STAFF) -> List[Dict[str, Any]]:
    """Dispatches the outbox; the envelopes delivered, by template."""
    got: List[Dict[str, Any]] = []
    tenant.dispatch(got.append, staff=None if staff is None else staff.get)
    return sorted(got, key=lambda e: str(e["notification"]["template"]))


def test_cases_open_record_and_list(tenant: Tenant) -> None:
    ann = tenant.register_customer("Ann Customer")
    bob = tenant.register_customer("Bob Customer")
    case = tenant.open_case(
        ann.id, "Broken hinge", kind="complaint", channel="phone", priority="high", assignee=ANN
    )
    assert (case.kind, case.channel, case.priority, case.status) == ("complaint", "phone", "high", "new")
    assert case.assignee == ANN and case.customer == ann.id and case.version == 1
    assert case.opened_at.tzinfo is not None
    assert [e["type"] for e in case.events] == ["opened"]
    assert tenant.get_case(case.id) == case

    replied = tenant.record_case_event(case, "public_reply", by=ANN)
    noted = tenant.record_case_event(replied, "internal_note", by=BOB)
    moved = tenant.record_case_event(noted, "assignment", to=BOB, by=ANN, reason="holiday")
    solved = tenant.record_case_event(moved, "status_change", status="resolved", by=BOB)
    assert solved.version == 5 and solved.status == "resolved" and solved.assignee == BOB
    events = tenant.get_case(case.id).events
    assert [e["type"] for e in events] == [
        "opened",
        "public_reply",
        "internal_note",
        "assignment",
        "status_change",
    ]
    assert events[1]["by"] == ANN
    assert (events[3]["to"], events[3]["by"], events[3]["reason"]) == (BOB, ANN, "holiday")
    assert (events[4]["to"], events[4]["by"]) == ("resolved", BOB)
    assert all(isinstance(e["at"], datetime.datetime) for e in events)

    other = tenant.open_case(bob.id, "Where is my order?", kind="warranty")
    assert other.kind == "warranty" and other.assignee is None
    assert {c.id for c in tenant.list_cases()} == {case.id, other.id}
    assert [c.id for c in tenant.list_cases(customer=ann.id)] == [case.id]
    assert [c.id for c in tenant.list_cases(assignee=BOB)] == [case.id]
    assert [c.id for c in tenant.list_cases(open_only=True)] == [other.id]
    assert len(tenant.list_cases(limit=1)) == 1
    assert "Broken hinge" in repr(solved)


def test_case_errors_name_the_field_and_write_nothing(tenant: Tenant) -> None:
    ann = tenant.register_customer("Ann Customer")
    case = tenant.open_case(ann.id, "Broken hinge")
    calls: List[Tuple[Callable[[], object], str]] = [
        (lambda: tenant.open_case(ann.id, "x", priority="asap"), "priority"),
        (lambda: tenant.open_case(ann.id, "x", kind="Not A Kind"), "kind"),
        (lambda: tenant.open_case(ann.id, "x", channel="pigeon"), "channel"),
        (lambda: tenant.open_case(ann.id, "  "), "subject"),
        (lambda: tenant.record_case_event(case, "shout"), "event"),
        (lambda: tenant.record_case_event(case, "public_reply"), "by"),
        (lambda: tenant.record_case_event(case, "status_change"), "status"),
        (lambda: tenant.record_case_event(case, "status_change", status="done"), "status"),
    ]
    for call, field in calls:
        with pytest.raises(ValidationError) as bad:
            call()
        assert bad.value.field == field
    with pytest.raises(NotFoundError):
        tenant.open_case(uuid.uuid4(), "Nobody's case")
    with pytest.raises(NotFoundError):
        tenant.get_case(uuid.uuid4())
    assert [c.id for c in tenant.list_cases()] == [case.id]
    tenant.record_case_event(case, "customer_message")
    with pytest.raises(ConflictError) as stale:
        tenant.record_case_event(case, "customer_message")
    assert (stale.value.expected, stale.value.actual) == (1, 2)
    assert tenant.get_case(case.id).version == 2


def test_kpi_rules_read_back_and_refuse_bad_input(tenant: Tenant) -> None:
    tenant.add_kpi_rule(FIRST_REPLY)
    gap = {
        "key": "call-back-30-days",
        "name": "Every owned customer contacted monthly",
        "metric": {"follow_up_gap": {"max_days": 30, "warn_days": 21}},
        "scope": {"lifecycles": ["active"], "tags": ["vip"]},
        "compliance_goal": 0.8,
        "on_breach": [{"reassign": {"to": LEAD}}],
    }
    tenant.add_kpi_rule(gap)
    rules = tenant.kpi_rules()
    assert [r["key"] for r in rules] == ["call-back-30-days", "first-reply-1h"]
    assert [r["version"] for r in rules] == [1, 1]
    case_rule = rules[1]
    assert case_rule["metric"]["case"]["target_secs"] == 3600
    assert case_rule["metric"]["case"]["definition"]["start"], "the built-in definition is filled in"
    assert rules[0]["on_breach"] == [{"reassign": {"to": str(LEAD)}}]
    assert rules[0]["scope"]["tags"] == ["vip"]

    with pytest.raises(DuplicateError):
        tenant.add_kpi_rule(FIRST_REPLY)
    for rule, field in [
        ({**FIRST_REPLY, "key": "other", "compliance_goal": 1.5}, "compliance_goal"),
        ({**FIRST_REPLY, "key": "other", "name": ""}, "name"),
        ({**FIRST_REPLY, "key": "other", "metric": {"case": {"metric": "speed"}}}, "rule.metric.case.metric"),
        ({**FIRST_REPLY, "key": "other", "metric": {"weather": {}}}, "rule"),
        ({**FIRST_REPLY, "key": "other", "on_breach": ["dance"]}, "rule"),
        ({"key": "other"}, "rule"),
    ]:
        with pytest.raises(ValidationError) as bad:
            tenant.add_kpi_rule(rule)
        assert bad.value.field == field, rule
    assert len(tenant.kpi_rules()) == 2

    tenant.update_kpi_rule({**FIRST_REPLY, "compliance_goal": 0.95}, 1)
    updated = [r for r in tenant.kpi_rules() if r["key"] == "first-reply-1h"][0]
    assert (updated["compliance_goal"], updated["version"]) == (0.95, 2)
    with pytest.raises(ConflictError):
        tenant.update_kpi_rule(FIRST_REPLY, 1)
    tenant.delete_kpi_rule("call-back-30-days")
    assert [r["key"] for r in tenant.kpi_rules()] == ["first-reply-1h"]
    with pytest.raises(NotFoundError):
        tenant.delete_kpi_rule("call-back-30-days")


def test_kpi_alerts_reach_staff_once_and_the_scorecard_ranks_them(tenant: Tenant) -> None:
    tenant.add_kpi_rule(FIRST_REPLY)
    customer = tenant.register_customer("Ann Customer")
    slow = tenant.open_case(customer.id, "Slow", assignee=ANN)
    fast = tenant.open_case(customer.id, "Fast", assignee=BOB)
    tenant.record_case_event(fast, "public_reply", by=BOB)
    start = slow.opened_at

    report = tenant.evaluate_kpis(now=start + 2 * HOUR)
    assert (report["cases"], report["warnings"], report["breaches"]) == (2, 1, 1)
    again = tenant.evaluate_kpis(now=start + 3 * HOUR, scan=True)
    assert (again["warnings"], again["breaches"]) == (0, 0)
    assert sorted(tenant.get_case(slow.id).alerts) == sorted(
        a for a in tenant.get_case(slow.id).alerts if a.startswith("kpi:first-reply-1h:")
    )
    assert len(tenant.get_case(slow.id).alerts) == 2 and tenant.get_case(fast.id).alerts == []

    envelopes = sent(tenant)
    assert [(e["notification"]["template"], e["to"]["email"]) for e in envelopes] == [
        ("kpi.breach", "lee@example.com"),
        ("kpi.warning", "ann@example.com"),
    ]
    assert envelopes[0]["to"]["locale"] == "de"
    assert tenant.pending() == 0

    lines, ranking = tenant.scorecard(start - HOUR, start + HOUR, now=start + 2 * HOUR)
    by_person = {(line.rule, line.who): line for line in lines}
    ann_line, bob_line = by_person[("first-reply-1h", ANN)], by_person[("first-reply-1h", BOB)]
    assert (ann_line.group, ann_line.measured, ann_line.met, ann_line.breached) == ("person", 1, 0, 1)
    assert (bob_line.measured, bob_line.met, bob_line.breached) == (1, 1, 0)
    assert (ann_line.compliance, bob_line.compliance) == (0.0, 1.0)
    assert (ann_line.goal_reached, bob_line.goal_reached) == (False, True)
    assert ann_line.median_secs is not None and ann_line.median_secs >= 3600
    assert ann_line.p90_secs == ann_line.median_secs  # one measurement each
    assert bob_line.p90_secs is not None and bob_line.p90_secs < 3600
    assert [who for who, _ in ranking] == [BOB, ANN]
    assert "first-reply-1h" in repr(ann_line)

    teams, _ = tenant.scorecard(start - HOUR, start + HOUR, now=start + 2 * HOUR, grouping="team", staff=STAFF.get)
    assert [(t.group, t.who, t.measured, t.met) for t in teams] == [("team", TEAM, 2, 1)]
    whole, _ = tenant.scorecard(start - HOUR, start + HOUR, now=start + 2 * HOUR, grouping="tenant")
    assert [(t.group, t.measured) for t in whole] == [("tenant", 2)]
    outside, _ = tenant.scorecard(start + HOUR, start + 2 * HOUR, now=start + 2 * HOUR)
    assert outside == []
    with pytest.raises(ValidationError) as bad:
        tenant.scorecard(start, start + HOUR, grouping="team")
    assert bad.value.field == "staff"
    with pytest.raises(ValidationError) as bad:
        tenant.scorecard(start, start + HOUR, grouping="planet")
    assert bad.value.field == "grouping"


def test_staff_directory_failures() -> None:
    tenant = Crm.open_in_memory().tenant(uuid.uuid4())
    customer = tenant.register_customer("Ann Customer")
    tenant.create_task("Call back", ANN, now() - HOUR, customer=customer.id)
    tenant.create_task("Send offer", BOB, now() - HOUR, customer=customer.id)
    assert len(tenant.remind_due()) == 2

    def down(user: uuid.UUID) -> Optional[Mapping[str, Any]]:
        raise OSError("the directory is down")

    got: List[Dict[str, Any]] = []
    counts = tenant.dispatch(got.append, staff=down)
    assert (counts["sent"], counts["retried"], counts["dead"]) == (0, 2, 0)
    assert tenant.pending() == 2 and got == []

    tenant2 = Crm.open_in_memory().tenant(uuid.uuid4())
    c2 = tenant2.register_customer("Bob Customer")
    tenant2.create_task("Call back", ANN, now() - HOUR, customer=c2.id)
    tenant2.create_task("Send offer", BOB, now() - HOUR, customer=c2.id)
    tenant2.create_task("Visit", LEAD, now() - HOUR, customer=c2.id)
    tenant2.remind_due()
    answers: Dict[uuid.UUID, Optional[Mapping[str, Any]]] = {
        ANN: None,
        BOB: {"name": "Bob", "email": "not an address"},
        LEAD: STAFF[LEAD],
    }
    counts = tenant2.dispatch(got.append, staff=answers.get)
    assert (counts["sent"], counts["dead"]) == (1, 2)
    assert [e["to"]["email"] for e in got] == ["lee@example.com"]


def test_tasks_snooze_complete_and_remind_once(tenant: Tenant) -> None:
    customer = tenant.register_customer("Ann Customer")
    case = tenant.open_case(customer.id, "Broken hinge")
    due = now() - HOUR
    call = tenant.create_task("Call back", ANN, due, customer=customer.id)
    weekly = tenant.create_task("Check the hinge", BOB, due + 10 * HOUR, case=case.id, every_days=7)
    assert (call.customer, call.case, call.assignee, call.is_open, call.version) == (customer.id, None, ANN, True, 1)
    assert (call.title, call.done_at, call.every_days) == ("Call back", None, None)
    assert call.due_at == due.replace(microsecond=call.due_at.microsecond)
    assert (weekly.case, weekly.customer, weekly.every_days) == (case.id, None, 7)
    assert tenant.get_task(call.id) == call
    assert [t.id for t in tenant.list_tasks(assignee=ANN)] == [call.id]
    assert [t.id for t in tenant.list_tasks(case=case.id)] == [weekly.id]
    assert [t.id for t in tenant.list_tasks(customer=customer.id)] == [call.id]

    reminded = tenant.remind_due()
    assert [t.id for t in reminded] == [call.id]
    assert tenant.remind_due() == []
    envelopes = sent(tenant)
    assert [(e["notification"]["template"], e["to"]["email"]) for e in envelopes] == [
        ("task.due", "ann@example.com")
    ]
    assert envelopes[0]["notification"]["data"]["title"] == "Call back"

    later = now() + 24 * HOUR
    snoozed = tenant.snooze_task(tenant.get_task(call.id), later)
    assert snoozed.due_at > now() and snoozed.version == call.version + 2
    with pytest.raises(ConflictError):
        tenant.snooze_task(call, later)
    # A day later both are due: the snoozed call and the weekly check.
    assert {t.id for t in tenant.remind_due(now=later + HOUR)} == {call.id, weekly.id}
    done = tenant.complete_task(tenant.get_task(call.id))
    assert not done.is_open and done.done_at is not None
    assert [t.id for t in tenant.list_tasks(open_only=True)] == [weekly.id]

    with pytest.raises(ConflictError):
        tenant.complete_task(weekly)  # the reminder changed it
    again = tenant.complete_task(tenant.get_task(weekly.id))
    assert again.is_open and again.done_at is None
    assert again.due_at - now() > datetime.timedelta(days=6)
    assert "Check the hinge" in repr(again)


def test_task_errors_name_the_field(tenant: Tenant) -> None:
    customer = tenant.register_customer("Ann Customer")
    task = tenant.create_task("Call back", ANN, now(), customer=customer.id)
    naive = datetime.datetime(2026, 1, 1)
    calls: List[Tuple[Callable[[], object], str]] = [
        (lambda: tenant.create_task("x", ANN, now()), "customer"),
        (lambda: tenant.create_task("x", ANN, now(), customer=customer.id, case=uuid.uuid4()), "case"),
        (lambda: tenant.create_task("", ANN, now(), customer=customer.id), "title"),
        (lambda: tenant.create_task("x", ANN, naive, customer=customer.id), "due_at"),
        (lambda: tenant.snooze_task(task, now() - HOUR), "until"),
        (lambda: tenant.remind_due(now=naive), "now"),
        (lambda: tenant.evaluate_kpis(now=naive), "now"),
    ]
    for call, field in calls:
        with pytest.raises(ValidationError) as bad:
            call()
        assert bad.value.field == field
    assert [t.id for t in tenant.list_tasks()] == [task.id]
    with pytest.raises(NotFoundError):
        tenant.get_task(uuid.uuid4())


def test_case_objects_compare_by_value(tenant: Tenant) -> None:
    customer = tenant.register_customer("Ann Customer")
    case = tenant.open_case(customer.id, "Broken hinge")
    same: Case = tenant.get_case(case.id)
    assert same == case
    assert tenant.record_case_event(case, "customer_message") != case
