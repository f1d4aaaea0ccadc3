"""The result channel: FIFO, bounded, nothing lost or duplicated under cancellation, anyio's
end-of-stream and broken-resource behaviour."""

from __future__ import annotations

import asyncio
from typing import Any

import anyio
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kube_runtime.controller.channel import ResultSender, ResultStream, result_channel


async def _parked(task: asyncio.Future[Any]) -> None:
    """Let ``task`` run until it waits (a few loop passes; it parks on its first one)."""
    for _ in range(3):
        await asyncio.sleep(0)
    assert not task.done()


def test_negative_buffer_is_refused() -> None:
    with pytest.raises(ValueError, match="max_buffer"):
        result_channel(-1)


async def test_rendezvous_send_nowait_needs_a_waiting_receiver() -> None:
    send: ResultSender[int]
    receive: ResultStream[int]
    send, receive = result_channel(0)
    with pytest.raises(anyio.WouldBlock):
        send.send_nowait(1)
    waiting = asyncio.ensure_future(receive.receive())
    await _parked(waiting)
    send.send_nowait(2)
    assert await waiting == 2


async def test_buffer_is_fifo_and_bounded() -> None:
    send: ResultSender[int]
    receive: ResultStream[int]
    send, receive = result_channel(2)
    send.send_nowait(1)
    send.send_nowait(2)
    with pytest.raises(anyio.WouldBlock):
        send.send_nowait(3)
    third = asyncio.ensure_future(send.send(3))
    await _parked(third)
    assert receive.receive_nowait() == 1  # frees a slot: the parked item moves in behind 2
    await asyncio.sleep(0)
    assert third.done()
    assert [receive.receive_nowait(), receive.receive_nowait()] == [2, 3]
    with pytest.raises(anyio.WouldBlock):
        receive.receive_nowait()


async def test_closing_the_sender_ends_iteration_after_the_buffered_items() -> None:
    send: ResultSender[int]
    receive: ResultStream[int]
    send, receive = result_channel(3)
    for item in (1, 2, 3):
        await send.send(item)
    send.close()
    assert [item async for item in receive] == [1, 2, 3]
    with pytest.raises(anyio.EndOfStream):
        await receive.receive()


async def test_a_parked_receiver_is_woken_by_close() -> None:
    send: ResultSender[int]
    receive: ResultStream[int]
    send, receive = result_channel(0)
    waiting = asyncio.ensure_future(receive.receive())
    await _parked(waiting)
    async with send:
        pass
    with pytest.raises(anyio.EndOfStream):
        await waiting


async def test_closing_the_receiver_breaks_parked_and_later_sends() -> None:
    send: ResultSender[int]
    receive: ResultStream[int]
    send, receive = result_channel(0)
    parked = asyncio.ensure_future(send.send(1))
    await _parked(parked)
    await receive.aclose()
    with pytest.raises(anyio.BrokenResourceError):
        await parked
    with pytest.raises(anyio.BrokenResourceError):
        await send.send(2)
    with pytest.raises(anyio.ClosedResourceError):
        receive.receive_nowait()


async def test_a_receiver_cancelled_after_the_hand_over_puts_the_item_back() -> None:
    send: ResultSender[int]
    receive: ResultStream[int]
    send, receive = result_channel(0)
    waiting = asyncio.ensure_future(receive.receive())
    await _parked(waiting)
    send.send_nowait(7)  # handed to the parked receiver, which has not resumed yet
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    assert receive.receive_nowait() == 7


async def test_a_sender_cancelled_before_the_take_withdraws_its_item() -> None:
    send: ResultSender[int]
    receive: ResultStream[int]
    send, receive = result_channel(0)
    parked = asyncio.ensure_future(send.send(1))
    await _parked(parked)
    parked.cancel()
    with pytest.raises(asyncio.CancelledError):
        await parked
    with pytest.raises(anyio.WouldBlock):
        receive.receive_nowait()


async def test_the_stream_is_an_anyio_object_receive_stream() -> None:
    send: ResultSender[str]
    receive: ResultStream[str]
    send, receive = result_channel(1)
    assert isinstance(receive, anyio.abc.ObjectReceiveStream)
    assert isinstance(send, anyio.abc.ObjectSendStream)
    async with anyio.create_task_group() as tg:

        async def produce() -> None:
            async with send:
                for word in ("a", "b", "c"):
                    await send.send(word)

        tg.start_soon(produce)
        async with receive:
            assert [word async for word in receive] == ["a", "b", "c"]


@settings(max_examples=150, deadline=None)
@given(
    buffer=st.integers(0, 3),
    plan=st.lists(
        st.tuples(st.sampled_from(["send", "receive"]), st.integers(0, 3), st.booleans()), max_size=40
    ),
)
def test_every_sent_item_arrives_once(buffer: int, plan: list[tuple[str, int, bool]]) -> None:
    """Random senders and receivers, some cancelled after a random number of loop passes: every
        item whose send completed is received, and none twice. (Order across concurrent receivers is the
    order they resume in, not the channel's: FIFO is checked with one receiver above.)"""

    async def scenario() -> None:
        send: ResultSender[int]
        receive: ResultStream[int]
        send, receive = result_channel(buffer)
        sent: list[int] = []
        received: list[int] = []
        tasks: list[tuple[asyncio.Task[None], int]] = []

        async def sender(item: int) -> None:
            await send.send(item)
            sent.append(item)

        async def receiver() -> None:
            received.append(await receive.receive())

        next_item = 0
        for op, delay, cancel in plan:
            if op == "send":
                task = asyncio.ensure_future(sender(next_item))
                next_item += 1
            else:
                task = asyncio.ensure_future(receiver())
            tasks.append((task, delay if cancel else -1))
            for _ in range(delay):
                await asyncio.sleep(0)
            for running, when in tasks:
                if when == 0 and not running.done():
                    running.cancel()
            tasks = [(t, w - 1 if w > 0 else w) for t, w in tasks]
        for _ in range(5):
            await asyncio.sleep(0)
        for running, _when in tasks:
            running.cancel()
        await asyncio.gather(*(t for t, _ in tasks), return_exceptions=True)
        send.close()
        received.extend([item async for item in receive])
        # Sends that completed arrived exactly once; an item may also arrive whose sender was
        # cancelled after the take (delivered, the cancellation came late), never twice.
        assert len(received) == len(set(received))
        assert set(sent) <= set(received)

    asyncio.run(scenario())
