"""``within``: the time limit every network call runs under (asyncio.timeout's rules)."""

from __future__ import annotations

import asyncio
import threading

import pytest

from nbinfra._deadline import _deadlines, within


async def _value_after(seconds: float, value: int = 7) -> int:
    await asyncio.sleep(seconds)
    return value


async def test_result_within_the_limit_and_no_limit() -> None:
    assert await within(_value_after(0), 5) == 7
    assert await within(_value_after(0.01), None) == 7


async def test_time_out_raises_timeout_error_and_leaves_the_task_uncancelled() -> None:
    task = asyncio.current_task()
    assert task is not None
    with pytest.raises(TimeoutError):
        await within(_value_after(5), 0.05)
    assert task.cancelling() == 0
    assert await within(_value_after(0), 1) == 7  # the task goes on normally


async def test_zero_or_negative_limit_expires_at_the_first_wait() -> None:
    with pytest.raises(TimeoutError):
        await within(_value_after(1), 0)
    with pytest.raises(TimeoutError):
        await within(_value_after(1), -1)


async def test_an_outside_cancel_stays_a_cancel() -> None:
    started = asyncio.Event()

    async def worker() -> int:
        started.set()
        return await within(_value_after(5), 10)

    task = asyncio.create_task(worker())
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_an_outside_cancel_at_the_deadline_wins_over_the_timeout() -> None:
    async def worker() -> None:
        await within(_value_after(5), 0.05)

    task = asyncio.create_task(worker())
    await asyncio.sleep(0.05)  # both requests land in about the same loop turn
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_nested_limits_each_fire_at_their_own_time() -> None:
    # The inner, shorter limit fires first and is handled inside the outer block.
    async def inner_times_out() -> str:
        try:
            await within(_value_after(5), 0.02)
        except TimeoutError:
            return "inner"
        return "none"

    assert await within(inner_times_out(), 5) == "inner"

    # The outer, shorter limit fires while the inner one is still open: the inner block
    # sees a cancellation that is not its own and passes it on; the outer one times out.
    with pytest.raises(TimeoutError):
        await within(within(_value_after(5), 10), 0.02)
    task = asyncio.current_task()
    assert task is not None and task.cancelling() == 0


async def test_a_later_shorter_limit_fires_before_an_earlier_longer_one() -> None:
    long = asyncio.create_task(within(_value_after(0.5), 5))
    await asyncio.sleep(0)
    with pytest.raises(TimeoutError):
        await within(_value_after(5), 0.02)
    assert not long.done()
    assert await long == 7


async def test_many_calls_schedule_one_timer_not_one_each() -> None:
    loop = asyncio.get_running_loop()
    before = len(loop._scheduled)  # type: ignore[attr-defined]
    for _ in range(500):
        await within(_value_after(0), 30)
    # asyncio.timeout would leave up to hundreds of cancelled timer handles here.
    assert len(loop._scheduled) <= before + 1  # type: ignore[attr-defined]
    assert not _deadlines(loop).open


async def test_concurrent_limits_time_out_only_the_slow_calls() -> None:
    results = await asyncio.gather(
        *(within(_value_after(0.01 if i % 2 else 2, i), 0.2) for i in range(10)),
        return_exceptions=True,
    )
    for i, result in enumerate(results):
        if i % 2:
            assert result == i
        else:
            assert isinstance(result, TimeoutError)


def test_each_event_loop_keeps_its_own_deadlines() -> None:
    outcomes: list[str] = []

    def run() -> None:
        async def main() -> None:
            try:
                await within(_value_after(5), 0.05)
            except TimeoutError:
                outcomes.append("timeout")
            outcomes.append(str(await within(_value_after(0.01), 1)))

        asyncio.run(main())

    threads = [threading.Thread(target=run) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert sorted(outcomes) == ["7", "7", "7", "timeout", "timeout", "timeout"]


def test_outside_a_task_is_a_clear_error() -> None:
    loop = asyncio.new_event_loop()
    try:
        coro = within(_value_after(0), 1)
        with pytest.raises(RuntimeError, match="inside an asyncio task"):
            # Driven by hand on a running loop but outside any task.
            loop.run_until_complete(_drive_outside_task(coro))
    finally:
        loop.close()


async def _drive_outside_task(coro: object) -> None:
    # asyncio.current_task() is None inside a plain callback.
    loop = asyncio.get_running_loop()
    done: asyncio.Future[None] = loop.create_future()

    def step() -> None:
        try:
            coro.send(None)  # type: ignore[attr-defined]
        except BaseException as exc:  # noqa: BLE001 - handed to the awaiting test
            done.set_exception(exc)
        else:
            done.set_result(None)

    loop.call_soon(step)
    await done
