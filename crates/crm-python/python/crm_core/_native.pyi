"""Type stubs of the extension module (the Rust core)."""

import datetime
import decimal
import uuid
from os import PathLike
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple, Union, final

__all__ = [
    "BatchReport",
    "Case",
    "ConflictError",
    "Crm",
    "CrmError",
    "Customer",
    "DeliveryRefused",
    "DuplicateError",
    "ForbiddenError",
    "Interaction",
    "NotFoundError",
    "Profile",
    "ScoreLine",
    "StorageError",
    "Task",
    "Tenant",
    "TimelinePage",
    "UnsupportedError",
    "ValidationError",
    "ValueClasses",
    "ValueScores",
]

_AttributeValue = Union[
    str, decimal.Decimal, int, bool, datetime.date, List[str], Tuple[decimal.Decimal, str]
]

class CrmError(Exception): ...

class ValidationError(CrmError):
    field: str
    reason: str

class NotFoundError(CrmError):
    entity: str
    id: str

class ConflictError(CrmError):
    entity: str
    id: str
    expected: int
    actual: int

class DuplicateError(CrmError):
    entity: str
    key: str

class ForbiddenError(CrmError):
    action: str
    record: str

class DeliveryRefused(CrmError): ...
class UnsupportedError(CrmError): ...
class StorageError(CrmError): ...

@final
class Customer:
    @property
    def id(self) -> uuid.UUID: ...
    @property
    def name(self) -> str: ...
    @property
    def kind(self) -> str: ...
    @property
    def emails(self) -> List[str]: ...
    @property
    def phones(self) -> List[str]: ...
    @property
    def lifecycle(self) -> str: ...
    @property
    def owner(self) -> Optional[uuid.UUID]: ...
    @property
    def tags(self) -> List[str]: ...
    @property
    def attributes(self) -> Dict[str, _AttributeValue]: ...
    @property
    def version(self) -> int: ...
    @property
    def created_at(self) -> datetime.datetime: ...
    @property
    def updated_at(self) -> datetime.datetime: ...

@final
class Interaction:
    @property
    def id(self) -> uuid.UUID: ...
    @property
    def customer(self) -> uuid.UUID: ...
    @property
    def channel(self) -> str: ...
    @property
    def kind(self) -> str: ...
    @property
    def direction(self) -> str: ...
    @property
    def handled_by(self) -> Optional[uuid.UUID]: ...
    @property
    def occurred_at(self) -> datetime.datetime: ...
    @property
    def amount(self) -> Optional[decimal.Decimal]: ...
    @property
    def currency(self) -> Optional[str]: ...
    @property
    def subject(self) -> Optional[str]: ...
    @property
    def body(self) -> Optional[str]: ...
    @property
    def duration_secs(self) -> Optional[int]: ...
    @property
    def wait_secs(self) -> Optional[int]: ...
    @property
    def case(self) -> Optional[uuid.UUID]: ...
    @property
    def attributes(self) -> Dict[str, _AttributeValue]: ...
    @property
    def key(self) -> Tuple[str, str]: ...

@final
class Profile:
    @property
    def interaction_count(self) -> int: ...
    @property
    def purchase_count(self) -> int: ...
    @property
    def complaint_count(self) -> int: ...
    @property
    def first_contact_at(self) -> Optional[datetime.datetime]: ...
    @property
    def last_contact_at(self) -> Optional[datetime.datetime]: ...
    @property
    def last_purchase_at(self) -> Optional[datetime.datetime]: ...
    @property
    def revenue(self) -> Dict[str, decimal.Decimal]: ...

@final
class BatchReport:
    @property
    def inserted(self) -> int: ...
    @property
    def duplicates(self) -> int: ...

@final
class TimelinePage:
    @property
    def items(self) -> List[Interaction]: ...
    @property
    def next(self) -> Optional[str]: ...

@final
class ValueClasses:
    @property
    def r(self) -> int: ...
    @property
    def f(self) -> int: ...
    @property
    def m(self) -> int: ...
    @property
    def segment(self) -> str: ...
    @property
    def abc(self) -> str: ...
    @property
    def as_of(self) -> datetime.date: ...

@final
class ValueScores:
    @property
    def p_alive(self) -> float: ...
    @property
    def expected_purchases_90d(self) -> float: ...
    @property
    def predicted_clv(self) -> decimal.Decimal: ...
    @property
    def currency(self) -> str: ...
    @property
    def scored_at(self) -> datetime.datetime: ...

_StaffDirectory = Callable[[uuid.UUID], Optional[Mapping[str, Any]]]

@final
class Case:
    @property
    def id(self) -> uuid.UUID: ...
    @property
    def customer(self) -> uuid.UUID: ...
    @property
    def kind(self) -> str: ...
    @property
    def subject(self) -> str: ...
    @property
    def priority(self) -> str: ...
    @property
    def channel(self) -> str: ...
    @property
    def assignee(self) -> Optional[uuid.UUID]: ...
    @property
    def status(self) -> str: ...
    @property
    def opened_at(self) -> datetime.datetime: ...
    @property
    def version(self) -> int: ...
    @property
    def events(self) -> List[Dict[str, Any]]: ...
    @property
    def alerts(self) -> List[str]: ...

@final
class ScoreLine:
    @property
    def rule(self) -> str: ...
    @property
    def group(self) -> str: ...
    @property
    def who(self) -> Optional[uuid.UUID]: ...
    @property
    def measured(self) -> int: ...
    @property
    def met(self) -> int: ...
    @property
    def breached(self) -> int: ...
    @property
    def compliance(self) -> float: ...
    @property
    def goal_reached(self) -> bool: ...
    @property
    def median_secs(self) -> Optional[int]: ...
    @property
    def p90_secs(self) -> Optional[int]: ...

@final
class Task:
    @property
    def id(self) -> uuid.UUID: ...
    @property
    def customer(self) -> Optional[uuid.UUID]: ...
    @property
    def case(self) -> Optional[uuid.UUID]: ...
    @property
    def title(self) -> str: ...
    @property
    def assignee(self) -> uuid.UUID: ...
    @property
    def due_at(self) -> datetime.datetime: ...
    @property
    def every_days(self) -> Optional[int]: ...
    @property
    def done_at(self) -> Optional[datetime.datetime]: ...
    @property
    def is_open(self) -> bool: ...
    @property
    def version(self) -> int: ...

@final
class Tenant:
    @property
    def id(self) -> uuid.UUID: ...
    def register_customer(
        self,
        name: str,
        *,
        kind: str = "person",
        emails: Optional[Sequence[str]] = None,
        phones: Optional[Sequence[str]] = None,
        lifecycle: Optional[str] = None,
        tags: Optional[Sequence[str]] = None,
        owner: Optional[uuid.UUID] = None,
        attributes: Optional[Mapping[str, _AttributeValue]] = None,
        external_id: Optional[Tuple[str, str]] = None,
    ) -> Customer: ...
    def get_customer(self, id: uuid.UUID) -> Customer: ...
    def update_customer(
        self,
        customer: Customer,
        *,
        name: Optional[str] = None,
        lifecycle: Optional[str] = None,
        emails: Optional[Sequence[str]] = None,
        phones: Optional[Sequence[str]] = None,
        tags: Optional[Sequence[str]] = None,
        attributes: Optional[Mapping[str, Optional[_AttributeValue]]] = None,
    ) -> Customer: ...
    def search_customers(
        self,
        *,
        name_prefix: Optional[str] = None,
        email: Optional[str] = None,
        tag: Optional[str] = None,
        owner: Optional[uuid.UUID] = None,
        lifecycle: Optional[str] = None,
        limit: int = 100,
    ) -> List[Customer]: ...
    def transfer_customers(
        self, from_user: uuid.UUID, to_user: uuid.UUID, *, reason: Optional[str] = None
    ) -> int: ...
    def log_interaction(
        self,
        customer: uuid.UUID,
        channel: str,
        kind: str,
        *,
        occurred_at: datetime.datetime,
        direction: Optional[str] = None,
        handled_by: Optional[uuid.UUID] = None,
        subject: Optional[str] = None,
        body: Optional[str] = None,
        amount: Optional[Union[decimal.Decimal, int]] = None,
        currency: Optional[str] = None,
        duration_secs: Optional[int] = None,
        wait_secs: Optional[int] = None,
        case: Optional[uuid.UUID] = None,
        attributes: Optional[Mapping[str, _AttributeValue]] = None,
        key: Optional[Tuple[str, str]] = None,
    ) -> BatchReport: ...
    def log_batch(self, batch: Sequence[Mapping[str, Any]]) -> BatchReport: ...
    def timeline(
        self, customer: uuid.UUID, *, limit: int = 50, after: Optional[str] = None
    ) -> TimelinePage: ...
    def profile(self, customer: uuid.UUID) -> Profile: ...
    def classify(self, as_of: datetime.date, *, currency: str = "EUR") -> int: ...
    def value_classes(self, customer: uuid.UUID) -> Optional[ValueClasses]: ...
    def score(
        self,
        calibration_end: datetime.date,
        *,
        currency: str = "EUR",
        horizon_weeks: float = 52.0,
        monthly_discount: float = 0.01,
        margin: float = 0.3,
    ) -> int: ...
    def value_scores(self, customer: uuid.UUID) -> Optional[ValueScores]: ...
    def preview_segment(
        self, rule: str, *, currency: str = "EUR", limit: int = 20
    ) -> Tuple[int, List[uuid.UUID]]: ...
    def create_segment(self, name: str, rule: str, *, currency: str = "EUR") -> uuid.UUID: ...
    def refresh_segment(
        self, segment: uuid.UUID, *, currency: str = "EUR"
    ) -> Tuple[List[uuid.UUID], List[uuid.UUID], int]: ...
    def segment_members(self, segment: uuid.UUID, *, limit: int = 1000) -> List[uuid.UUID]: ...
    def export_customer(self, customer: uuid.UUID) -> Dict[str, Any]: ...
    def erase_customer(self, customer: uuid.UUID, version: int) -> Customer: ...
    def notify_customer(
        self,
        customer: uuid.UUID,
        template: str,
        key: str,
        *,
        data: Optional[Mapping[str, Any]] = None,
    ) -> int: ...
    def pending(self) -> int: ...
    def dispatch(
        self,
        notifier: Callable[[Dict[str, Any]], object],
        *,
        events: Optional[Callable[[Dict[str, Any]], object]] = None,
        staff: Optional[_StaffDirectory] = None,
    ) -> Dict[str, int]: ...
    def open_case(
        self,
        customer: uuid.UUID,
        subject: str,
        *,
        kind: str = "inquiry",
        channel: str = "email",
        priority: str = "normal",
        assignee: Optional[uuid.UUID] = None,
    ) -> Case: ...
    def get_case(self, id: uuid.UUID) -> Case: ...
    def list_cases(
        self,
        *,
        customer: Optional[uuid.UUID] = None,
        assignee: Optional[uuid.UUID] = None,
        open_only: bool = False,
        limit: int = 100,
    ) -> List[Case]: ...
    def record_case_event(
        self,
        case: Case,
        event: str,
        *,
        by: Optional[uuid.UUID] = None,
        to: Optional[uuid.UUID] = None,
        status: Optional[str] = None,
        reason: Optional[str] = None,
    ) -> Case: ...
    def add_kpi_rule(self, rule: Mapping[str, Any]) -> None: ...
    def update_kpi_rule(self, rule: Mapping[str, Any], version: int) -> None: ...
    def delete_kpi_rule(self, key: str) -> None: ...
    def kpi_rules(self) -> List[Dict[str, Any]]: ...
    def evaluate_kpis(
        self, *, now: Optional[datetime.datetime] = None, scan: bool = False
    ) -> Dict[str, int]: ...
    def scorecard(
        self,
        start: datetime.datetime,
        end: datetime.datetime,
        *,
        now: Optional[datetime.datetime] = None,
        grouping: str = "person",
        staff: Optional[_StaffDirectory] = None,
    ) -> Tuple[List[ScoreLine], List[Tuple[uuid.UUID, float]]]: ...
    def create_task(
        self,
        title: str,
        assignee: uuid.UUID,
        due_at: datetime.datetime,
        *,
        customer: Optional[uuid.UUID] = None,
        case: Optional[uuid.UUID] = None,
        every_days: Optional[int] = None,
    ) -> Task: ...
    def get_task(self, id: uuid.UUID) -> Task: ...
    def list_tasks(
        self,
        *,
        assignee: Optional[uuid.UUID] = None,
        customer: Optional[uuid.UUID] = None,
        case: Optional[uuid.UUID] = None,
        open_only: bool = False,
        limit: int = 100,
    ) -> List[Task]: ...
    def snooze_task(self, task: Task, until: datetime.datetime) -> Task: ...
    def complete_task(self, task: Task) -> Task: ...
    def remind_due(self, *, now: Optional[datetime.datetime] = None) -> List[Task]: ...

@final
class Crm:
    @staticmethod
    def open_sqlite(path: Union[str, "PathLike[str]"], *, events: bool = False) -> "Crm": ...
    @staticmethod
    def open_in_memory(*, events: bool = False) -> "Crm": ...
    @staticmethod
    def open_postgres(url: str, *, events: bool = False) -> "Crm": ...
    def tenant(self, tenant: uuid.UUID) -> Tenant: ...
