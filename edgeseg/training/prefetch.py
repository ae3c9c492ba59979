"""Prepare the next training batches in a background thread while the model computes.

OpenCV's warps and LUTs release the GIL, so augmenting batch n+1 overlaps with the forward and
backward pass of batch n. Batches come out in the order the iterable makes them, so a seeded
epoch is the same with and without prefetching.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterable, Iterator

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
