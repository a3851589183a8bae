"""Send slots shared fairly: keys whose endpoints hang delay only themselves."""

from __future__ import annotations

import asyncio

from app.dispatch.fair_slots import FairSlots


async def test_keys_that_hang_hold_their_share_and_another_key_sends_at_once() -> None:
    slots = FairSlots(32)
    hang = asyncio.Event()
    held: dict[str, int] = {}

    async def hanging(key: str) -> None:
        async with slots.slot(key):
            held[key] = held.get(key, 0) + 1
            await hang.wait()

    # Four keys, ten endpoints each that never answer: forty sends for 32 slots (their jobs
    # come interleaved, as from the webhooks topic's partitions).
    tasks = [asyncio.create_task(hanging(f"bad{k}")) for _ in range(10) for k in range(4)]
    await asyncio.sleep(0.01)
    assert held == {f"bad{k}": 8 for k in range(4)}  # 32 // 4 each, the rest wait
    # A fifth key's sends go at once, though every slot was taken.
    async with asyncio.timeout(1):
        for _ in range(6):
            async with slots.slot("good"):
                assert slots.share() == 32 // 5
    hang.set()
    await asyncio.gather(*tasks)
    assert held == {f"bad{k}": 10 for k in range(4)} and slots.holding() == {}


async def test_a_key_alone_may_use_every_slot_and_never_more() -> None:
    slots = FairSlots(3)
    inside, peak = 0, 0
    release = asyncio.Event()

    async def send() -> None:
        nonlocal inside, peak
        async with slots.slot("only"):
            inside += 1
            peak = max(peak, inside)
            await release.wait()
            inside -= 1

    tasks = [asyncio.create_task(send()) for _ in range(7)]
    await asyncio.sleep(0.01)
    assert inside == 3
    release.set()
    await asyncio.gather(*tasks)
    assert peak == 3


async def test_a_key_that_took_every_slot_alone_delays_no_newcomer() -> None:
    slots = FairSlots(4)
    hang = asyncio.Event()

    async def hanging() -> None:
        async with slots.slot("first"):
            await hang.wait()

    tasks = [asyncio.create_task(hanging()) for _ in range(6)]
    await asyncio.sleep(0.01)
    assert slots.holding() == {"first": 4}  # alone, it used all four
    async with asyncio.timeout(1), slots.slot("second"):  # no slot is free, yet it goes
        assert slots.share() == 2 and slots.holding() == {"first": 4, "second": 1}
    hang.set()
    await asyncio.gather(*tasks)
