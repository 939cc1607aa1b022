"""Periodic jobs: they run on their schedule, and a worker's run at once when woken."""

from __future__ import annotations

import asyncio
from typing import Any

from annota.core.queue import JobContext, PeriodicJob, run_periodically, wake


def _context(name: str, attempt: int) -> JobContext:
    return JobContext(name, sessionmaker=None, settings=None, plugins=None)  # type: ignore[arg-type]


def test_a_wakeable_job_runs_when_woken_and_others_keep_to_their_schedule() -> None:
    async def scenario() -> dict[str, int]:
        runs = {"worker": 0, "server": 0}
        ran = asyncio.Event()

        def job(name: str) -> Any:
            async def run(ctx: JobContext) -> None:
                runs[name] += 1
                ran.set()

            return PeriodicJob(f"test.{name}", run, "utils", every=60, plugin="test")

        loops = [
            asyncio.create_task(run_periodically(job("worker"), _context, wakeable=True)),
            asyncio.create_task(run_periodically(job("server"), _context)),
        ]
        while runs != {"worker": 1, "server": 1}:
            await asyncio.sleep(0.01)
        ran.clear()
        wake("test.worker")
        wake("test.server")
        wake("test.unknown")
        await asyncio.wait_for(ran.wait(), 5)
        # the server's job would have run by now had the wake reached it
        await asyncio.sleep(0.2)
        for loop in loops:
            loop.cancel()
        await asyncio.gather(*loops, return_exceptions=True)
        wake("test.worker")  # stopped: nothing to wake
        return runs

    assert asyncio.run(scenario()) == {"worker": 2, "server": 1}
