"""The asyncio variants: awaited calls, run together, the event loop free meanwhile."""

import asyncio
import datetime
import decimal
import time
import uuid
from typing import List

import pytest

from crm_core import Customer, NotFoundError, ValidationError
from crm_core.aio import AsyncCrm

UTC = datetime.timezone.utc
D = decimal.Decimal


def test_awaited_calls_give_the_same_values() -> None:
    async def main() -> None:
        crm = await AsyncCrm.open_in_memory(events=True)
        acme = crm.tenant(uuid.uuid4())
        assert repr(acme) == f"AsyncTenant(id={acme.id})"
        people: List[Customer] = await asyncio.gather(
            *(acme.register_customer(f"Customer {n}", tags=["web"]) for n in range(40))
        )
        assert len({c.id for c in people}) == 40
        assert await acme.get_customer(people[0].id) == people[0]
        reports = await asyncio.gather(
            *(
                acme.log_interaction(
                    c.id,
                    "web",
                    "purchase",
                    occurred_at=datetime.datetime(2026, 3, 1, tzinfo=UTC),
                    amount=D("12.50"),
                    currency="EUR",
                )
                for c in people
            )
        )
        assert sum(r.inserted for r in reports) == 40
        assert (await acme.profile(people[7].id)).revenue == {"EUR": D("12.50")}
        found = await acme.search_customers(tag="web", limit=1000)
        assert len(found) == 40
        case = await acme.open_case(people[0].id, "Broken hinge", kind="complaint")
        assert (await acme.list_cases(open_only=True))[0].id == case.id
        assert await acme.pending() > 0
        with pytest.raises(ValidationError) as bad:
            await acme.register_customer("  ")
        assert bad.value.field == "name"
        with pytest.raises(NotFoundError):
            await acme.get_case(uuid.uuid4())

    asyncio.run(main())


def test_the_event_loop_runs_while_the_core_works() -> None:
    async def main() -> None:
        crm = await AsyncCrm.open_in_memory()
        acme = crm.tenant(uuid.uuid4())
        ann = await acme.register_customer("Ann")
        start = datetime.datetime(2025, 1, 1, tzinfo=UTC)
        batch = [
            {
                "customer": ann.id,
                "channel": "web",
                "kind": "purchase",
                "occurred_at": start + datetime.timedelta(minutes=n),
                "amount": D("1.00"),
                "currency": "EUR",
                "key": ("shop", str(n)),
            }
            for n in range(20_000)
        ]
        ticks = 0
        done = asyncio.Event()

        async def ticker() -> None:
            nonlocal ticks
            while not done.is_set():
                await asyncio.sleep(0.005)
                ticks += 1

        beat = asyncio.create_task(ticker())
        began = time.monotonic()
        report = await acme.log_batch(batch)
        took = time.monotonic() - began
        done.set()
        await beat
        assert report.inserted == 20_000
        # Run on the loop, the call would have left the ticker no turn at all.
        assert ticks >= 3, (ticks, took)

    asyncio.run(main())


def test_the_package_examples_run() -> None:
    import doctest

    import crm_core
    import crm_core.aio

    for module in (crm_core, crm_core.aio):
        failed, tried = doctest.testmod(module)
        assert tried > 0 and failed == 0, module.__name__
