"""The same API for asyncio: ``AsyncCrm`` and ``AsyncTenant``, whose calls are awaited.

Each call runs the synchronous call of ``Tenant`` on a worker thread
(``asyncio.to_thread``). The core releases the GIL while it works, so the event loop and
its other tasks go on meanwhile, and calls awaited together run at the same time. Values,
exceptions and arguments are those of ``Tenant``; callables given to ``dispatch`` are
plain functions, called on the worker thread.

>>> import asyncio, uuid
>>> from crm_core.aio import AsyncCrm
>>> async def main() -> str:
...     crm = await AsyncCrm.open_in_memory()
...     acme = crm.tenant(uuid.uuid4())
...     ann = await acme.register_customer("Ann Lee")
...     return (await acme.get_customer(ann.id)).name
>>> asyncio.run(main())
'Ann Lee'
"""

from __future__ import annotations

import asyncio
import sys
import uuid
from os import PathLike
from typing import TYPE_CHECKING, Awaitable, Callable, TypeVar, Union

from ._native import Crm, Tenant

if sys.version_info >= (3, 10):
    from typing import Concatenate, ParamSpec

    P = ParamSpec("P")
elif TYPE_CHECKING:  # pragma: no cover (Python 3.9: the names only serve annotations)
    from typing_extensions import Concatenate, ParamSpec

    P = ParamSpec("P")

R = TypeVar("R")

__all__ = ["AsyncCrm", "AsyncTenant"]


def _awaitable(
    method: Callable[Concatenate[Tenant, P], R],
) -> Callable[Concatenate[AsyncTenant, P], Awaitable[R]]:
    """``method`` of ``Tenant`` as a coroutine method of ``AsyncTenant``."""

    async def call(self: AsyncTenant, /, *args: P.args, **kwargs: P.kwargs) -> R:
        return await asyncio.to_thread(method, self.sync, *args, **kwargs)

    call.__name__ = method.__name__
    call.__qualname__ = f"AsyncTenant.{method.__name__}"
    call.__doc__ = method.__doc__
    return call


class AsyncTenant:
    """A tenant's handle for asyncio: the methods of ``Tenant``, awaited."""

    def __init__(self, tenant: Tenant) -> None:
        #: The synchronous handle these calls go through.
        self.sync = tenant

    @property
    def id(self) -> uuid.UUID:
        """The tenant's id."""
        return self.sync.id

    def __repr__(self) -> str:
        return f"Async{self.sync!r}"

    register_customer = _awaitable(Tenant.register_customer)
    get_customer = _awaitable(Tenant.get_customer)
    update_customer = _awaitable(Tenant.update_customer)
    search_customers = _awaitable(Tenant.search_customers)
    transfer_customers = _awaitable(Tenant.transfer_customers)
    log_interaction = _awaitable(Tenant.log_interaction)
    log_batch = _awaitable(Tenant.log_batch)
    timeline = _awaitable(Tenant.timeline)
    profile = _awaitable(Tenant.profile)
    classify = _awaitable(Tenant.classify)
    value_classes = _awaitable(Tenant.value_classes)
    score = _awaitable(Tenant.score)
    value_scores = _awaitable(Tenant.value_scores)
    preview_segment = _awaitable(Tenant.preview_segment)
    create_segment = _awaitable(Tenant.create_segment)
    refresh_segment = _awaitable(Tenant.refresh_segment)
    segment_members = _awaitable(Tenant.segment_members)
    export_customer = _awaitable(Tenant.export_customer)
    erase_customer = _awaitable(Tenant.erase_customer)
    notify_customer = _awaitable(Tenant.notify_customer)
    pending = _awaitable(Tenant.pending)
    dispatch = _awaitable(Tenant.dispatch)
    open_case = _awaitable(Tenant.open_case)
    get_case = _awaitable(Tenant.get_case)
    list_cases = _awaitable(Tenant.list_cases)
    record_case_event = _awaitable(Tenant.record_case_event)
    add_kpi_rule = _awaitable(Tenant.add_kpi_rule)
    update_kpi_rule = _awaitable(Tenant.update_kpi_rule)
    delete_kpi_rule = _awaitable(Tenant.delete_kpi_rule)
    kpi_rules = _awaitable(Tenant.kpi_rules)
    evaluate_kpis = _awaitable(Tenant.evaluate_kpis)
    scorecard = _awaitable(Tenant.scorecard)
    create_task = _awaitable(Tenant.create_task)
    get_task = _awaitable(Tenant.get_task)
    list_tasks = _awaitable(Tenant.list_tasks)
    snooze_task = _awaitable(Tenant.snooze_task)
    complete_task = _awaitable(Tenant.complete_task)
    remind_due = _awaitable(Tenant.remind_due)


class AsyncCrm:
    """The core over one store, for asyncio: opening awaits; ``tenant`` gives an
    ``AsyncTenant``."""

    def __init__(self, crm: Crm) -> None:
        #: The synchronous handle.
        self.sync = crm

    @staticmethod
    async def open_sqlite(path: Union[str, PathLike[str]], *, events: bool = False) -> AsyncCrm:
        """``Crm.open_sqlite``, awaited."""
        return AsyncCrm(await asyncio.to_thread(Crm.open_sqlite, path, events=events))

    @staticmethod
    async def open_in_memory(*, events: bool = False) -> AsyncCrm:
        """``Crm.open_in_memory``, awaited."""
        return AsyncCrm(await asyncio.to_thread(Crm.open_in_memory, events=events))

    @staticmethod
    async def open_postgres(url: str, *, events: bool = False) -> AsyncCrm:
        """``Crm.open_postgres``, awaited."""
        return AsyncCrm(await asyncio.to_thread(Crm.open_postgres, url, events=events))

    def tenant(self, tenant: uuid.UUID) -> AsyncTenant:
        """The handle for one tenant."""
        return AsyncTenant(self.sync.tenant(tenant))

    def __repr__(self) -> str:
        return f"Async{self.sync!r}"
