"""Prepare the next training batches in background threads while the model computes.

OpenCV's warps and LUTs release the GIL, so augmenting batch n+1 overlaps with the forward and
backward pass of batch n (``prefetch``), and several batches are made at once where a GPU takes
them faster than one core makes them (``ordered_map``). Batches come out in the order the epoch
draws them, so a seeded epoch is the same with and without either.
"""

from __future__ import annotations

import queue
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor

_DONE = object()


class _Failure:
    def __init__(self, error: BaseException):
        self.error = error


def prefetch(items: Iterable, depth: int = 2) -> Iterator:
    """Yield what ``items`` yields, made up to ``depth`` items ahead in a daemon thread. An error
    raised while making an item is raised here, at that item."""
    slots: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item) -> bool:
        """Queue an item, waiting while the queue is full; False once the consumer has stopped."""
        while not stop.is_set():
            try:
                slots.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not put(item):
                    return
            put(_DONE)
        except BaseException as error:  # handed to the consumer, which raises it
            put(_Failure(error))

    worker = threading.Thread(target=produce, name="edgeseg-prefetch", daemon=True)
    worker.start()
    try:
        while True:
            item = slots.get()
            if item is _DONE:
                break
            if isinstance(item, _Failure):
                raise item.error
            yield item
    finally:
        stop.set()  # a consumer that stops early frees the producer
        worker.join(timeout=5)


def ordered_map(make: Callable[[int], object], count: int, workers: int = 1) -> Iterator:
    """``make(0) .. make(count - 1)`` in order, made by ``workers`` threads at most two each
    ahead of the consumer (1: in the caller's thread, as it asks). An error is raised at its item."""
    if workers <= 1:
        yield from (make(k) for k in range(count))
        return
    with ThreadPoolExecutor(workers, thread_name_prefix="edgeseg-batches") as pool:
        pending: deque[Future] = deque()
        try:
            for k in range(count):
                pending.append(pool.submit(make, k))
                if len(pending) >= 2 * workers:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        finally:  # a consumer that stops early leaves nothing running behind it
            for future in pending:
                future.cancel()
