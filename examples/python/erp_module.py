"""A minimal "ERP" in Python that keeps its orders in its own tables and uses the CRM core
for its customers: every order is logged as a purchase (idempotently, by order number),
the ERP receives the core's domain events, then the core classifies the customers (RFM,
ABC) and scores their lifetime value.

    pip install ./crates/crm-python
    python examples/python/erp_module.py [FOLDER]

FOLDER (default: a temporary one, removed at the end) receives erp.db (the ERP's own
SQLite tables) and crm.db (the CRM core's).
"""

import datetime
import decimal
import random
import sqlite3
import sys
import tempfile
import uuid
from collections import Counter
from pathlib import Path

from crm_core import Crm, Tenant

TENANT = uuid.UUID("00000000-0000-4000-8000-00000000e4b1")
START = datetime.datetime(2025, 1, 2, 9, 0, tzinfo=datetime.timezone.utc)


def make_orders(erp: sqlite3.Connection) -> None:
    """The ERP's own data: customers and a year of orders."""
    erp.executescript(
        """
        CREATE TABLE IF NOT EXISTS customer (no TEXT PRIMARY KEY, name TEXT, email TEXT);
        CREATE TABLE IF NOT EXISTS sales_order (
            no TEXT PRIMARY KEY, customer_no TEXT, placed_at TEXT, total TEXT);
        """
    )
    dice = random.Random(7)
    for n in range(40):
        erp.execute(
            "INSERT OR IGNORE INTO customer VALUES (?, ?, ?)",
            (f"K{n:03}", f"Customer {n:03}", f"buyer{n}@example.com"),
        )
        day = dice.randrange(0, 120)
        every = dice.choice([6, 12, 25, 45, 90])
        stop = dice.choice([200, 365, 365])
        k = 0
        while day < stop:
            placed = START + datetime.timedelta(days=day)
            total = decimal.Decimal(dice.randrange(1500, 25000)) / 100
            erp.execute(
                "INSERT OR IGNORE INTO sales_order VALUES (?, ?, ?, ?)",
                (f"SO-{n:03}-{k}", f"K{n:03}", placed.isoformat(), str(total)),
            )
            day += every + dice.randrange(0, every)
            k += 1
    erp.commit()


def sync(erp: sqlite3.Connection, crm: Tenant) -> dict[str, uuid.UUID]:
    """Customers and orders into the CRM core; a second run stores nothing twice."""
    ids: dict[str, uuid.UUID] = {}
    for no, name, email in erp.execute("SELECT no, name, email FROM customer ORDER BY no"):
        known = crm.search_customers(email=email, limit=1)
        customer = known[0] if known else crm.register_customer(
            name, emails=[email], lifecycle="active", external_id=("erp", no)
        )
        ids[no] = customer.id
    batch = [
        {
            "customer": ids[customer_no],
            "channel": "web",
            "kind": "purchase",
            "occurred_at": datetime.datetime.fromisoformat(placed_at),
            "amount": decimal.Decimal(total),
            "currency": "EUR",
            "key": ("erp", order_no),
        }
        for order_no, customer_no, placed_at, total in erp.execute(
            "SELECT no, customer_no, placed_at, total FROM sales_order ORDER BY no"
        )
    ]
    report = crm.log_batch(batch)
    print(f"orders: {report.inserted} logged as purchases, {report.duplicates} already there")
    return ids


def main(folder: Path) -> None:
    erp = sqlite3.connect(folder / "erp.db")
    make_orders(erp)
    crm = Crm.open_sqlite(folder / "crm.db", events=True).tenant(TENANT)
    ids = sync(erp, crm)
    # The core's domain events, in order per customer: here the ERP only counts them.
    seen: Counter[str] = Counter()
    crm.dispatch(lambda message: None, events=lambda event: seen.update([event["kind"]]))
    print("events:", ", ".join(f"{n} {kind}" for kind, n in sorted(seen.items())) or "none")
    year_end = datetime.date(2025, 12, 31)
    print(f"classified {crm.classify(year_end)} customers, scored {crm.score(year_end)}")
    print(f"\n{'customer':<14} {'purchases':>9} {'revenue':>10}  rfm  abc  p_alive  clv (EUR)")
    for no in ["K000", "K001", "K002", "K003", "K004"]:
        profile = crm.profile(ids[no])
        classes = crm.value_classes(ids[no])
        scores = crm.value_scores(ids[no])
        if classes is None or scores is None:
            print(f"{no:<14} no purchase in 2025")
            continue
        rfm = f"{classes.r}{classes.f}{classes.m}"
        print(
            f"{crm.get_customer(ids[no]).name:<14} {profile.purchase_count:>9} "
            f"{profile.revenue.get('EUR', decimal.Decimal(0)):>10}  {rfm}  "
            f"{classes.abc:>3}  {scores.p_alive:>7.2f}  {scores.predicted_clv:>9}"
            f"  ({classes.segment})"
        )


if __name__ == "__main__":
    if len(sys.argv) > 1:
        main(Path(sys.argv[1]))
    else:
        with tempfile.TemporaryDirectory() as tmp:
            main(Path(tmp))
