"""An embeddable CRM core from Python: customers, interactions, cases, KPI rules, tasks.

The work is done by the Rust core (the extension module ``crm_core._native``); calls release
the GIL while it works. Ids are ``uuid.UUID``, instants aware ``datetime`` (stored in UTC),
amounts ``decimal.Decimal``. Errors are subclasses of ``CrmError``.

>>> import uuid
>>> from crm_core import Crm
>>> acme = Crm.open_in_memory().tenant(uuid.uuid4())
>>> ann = acme.register_customer("Ann Lee", emails=["ann@example.com"])
>>> acme.get_customer(ann.id).name
'Ann Lee'
"""

from ._native import (
    BatchReport,
    Case,
    ConflictError,
    Crm,
    CrmError,
    Customer,
    DeliveryRefused,
    DuplicateError,
    ForbiddenError,
    Interaction,
    NotFoundError,
    Profile,
    ScoreLine,
    StorageError,
    Task,
    Tenant,
    TimelinePage,
    UnsupportedError,
    ValidationError,
    ValueClasses,
    ValueScores,
)

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
