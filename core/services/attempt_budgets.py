"""Budgets of attempts per key, kept in the database so that every API process shares them.

Each key holds one number, the generic cell-rate algorithm's *theoretical arrival time* (TAT): a
budget of ``burst`` attempts, one of which comes back every ``interval`` seconds. An attempt is
allowed when ``tat <= now + (burst - 1) * interval`` and moves ``tat`` one interval on from
``max(tat, now)``. The check and the spending are one conditional ``UPDATE``, so parallel attempts
cannot overspend, on SQLite and PostgreSQL alike; a refused attempt spends nothing, so a budget
always comes back at the same pace however hard it is hammered.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Table, case, delete, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from annota.core.db.tables import LoginThrottle


@dataclass(frozen=True)
class Budget:
    #: attempts allowed at once
    burst: int
    #: seconds for one spent attempt to come back
    interval: float

    @property
    def tolerance(self) -> float:
        return (self.burst - 1) * self.interval


Sessionmaker = async_sessionmaker[AsyncSession]
#: ``INSERT ... ON CONFLICT DO NOTHING`` tells whether it inserted by what it returns (its row
#: count is -1 with psycopg)
_TABLE: Table = LoginThrottle.__table__  # type: ignore[assignment]


async def spend(sessionmaker: Sessionmaker, key: str, budget: Budget, now: float) -> float:
    """Spend one attempt of ``key``'s budget: 0 when allowed, else the seconds until one is
    available again (and nothing is spent)."""
    if budget.burst < 1:
        return budget.interval
    row = LoginThrottle
    limit = now + budget.tolerance
    for _ in range(3):
        async with sessionmaker.begin() as session:
            spent = await session.execute(
                update(row)
                .where(row.key == key, row.tat <= limit)
                .values(tat=case((row.tat > now, row.tat), else_=now) + budget.interval)
                .execution_options(synchronize_session=False)
            )
            if spent.rowcount:  # type: ignore[attr-defined]
                return 0.0
            dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
            created = await session.scalar(
                dialect.insert(_TABLE)
                .values(key=key, tat=now + budget.interval)
                .on_conflict_do_nothing()
                .returning(_TABLE.c.key)
            )
            if created is not None:
                return 0.0
            tat = await session.scalar(select(row.tat).where(row.key == key))
        if tat is not None and tat > limit:
            return float(tat - limit)
        # the row was pruned, or given back, between the statements: try again
    return budget.interval


async def give_back(sessionmaker: Sessionmaker, key: str, budget: Budget) -> None:
    """Return one attempt spent (one that turned out not to count)."""
    async with sessionmaker.begin() as session:
        await session.execute(
            update(LoginThrottle)
            .where(LoginThrottle.key == key)
            .values(tat=LoginThrottle.tat - budget.interval)
            .execution_options(synchronize_session=False)
        )


async def reset(sessionmaker: Sessionmaker, *keys: str) -> None:
    """Give the keys their whole budget back."""
    async with sessionmaker.begin() as session:
        await session.execute(delete(LoginThrottle).where(LoginThrottle.key.in_(keys)))


async def prune(sessionmaker: Sessionmaker, now: float) -> None:
    """Forget the keys whose budget is whole again (a past ``tat`` is the same as none)."""
    async with sessionmaker.begin() as session:
        await session.execute(delete(LoginThrottle).where(LoginThrottle.tat <= now))
