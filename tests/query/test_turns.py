"""Turns per project: one tenant's queries wait for each other, never for another tenant's."""

from __future__ import annotations

import asyncio

import pytest

from roost.errors import RateLimited
from roost.query.turns import Turns


def test_a_project_waits_for_its_own_turn_and_others_do_not() -> None:
    async def run() -> list[str]:
        turns, order = Turns(1, "SQL queries"), []
        release = asyncio.Event()

        async def query(project: int, name: str, hold: bool) -> None:
            async with turns.turn(project, wait=5):
                order.append(f"{name} runs")
                if hold:
                    await release.wait()
            order.append(f"{name} done")

        first = asyncio.ensure_future(query(1, "a1", hold=True))
        await asyncio.sleep(0.01)
        second = asyncio.ensure_future(query(1, "a2", hold=False))
        await query(2, "b", hold=False)  # another project: not held up by a1
        await asyncio.sleep(0.01)
        assert "a2 runs" not in order  # a1 still holds project 1's only place
        release.set()
        await asyncio.gather(first, second)
        return order

    order = asyncio.run(run())
    assert order.index("b done") < order.index("a1 done") < order.index("a2 runs")


def test_past_the_wait_it_is_a_429_naming_the_limit() -> None:
    async def run() -> None:
        turns = Turns(2, "SQL queries")
        async with turns.turn(7, wait=1), turns.turn(7, wait=1):
            with pytest.raises(RateLimited) as refused:
                async with turns.turn(7, wait=0.05):
                    pass
            assert "2 SQL queries at once" in refused.value.message
            assert refused.value.retry_after >= 1
        async with turns.turn(7, wait=0.05):  # places given back
            pass

    asyncio.run(run())
