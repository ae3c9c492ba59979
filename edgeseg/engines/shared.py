"""One compiled engine shared by several cameras: each gets a view of its own requests and their
buffers, so frames from every camera fill the one engine's requests while the model is held in
memory once. A view is an Engine like any other to the loop that uses it."""

from __future__ import annotations

from edgeseg.engines.base import Engine, InOrderRequests


class EngineView(InOrderRequests):
    """Requests ``ids`` of ``parent``, numbered 0.. for the loop that holds the view. Where the
    parent starts and waits for requests itself (OpenVINO, TensorRT), a view's requests run
    asynchronously as the parent's do; elsewhere (ONNX Runtime) each runs when it is started."""

    def __init__(self, parent: Engine, ids: list[int]):
        self.parent, self.ids = parent, list(ids)
        self.backend = parent.backend
        super().__init__(parent.spec, len(self.ids))

    def _buffers(self) -> None:  # the parent's, for this view's requests: nothing is allocated
        self.inputs = [self.parent.inputs[i] for i in self.ids]
        self.masks = [self.parent.masks[i] for i in self.ids]
        self.confidences = [self.parent.confidences[i] for i in self.ids]

    def infer(self, request: int = 0) -> None:
        self.parent.infer(self.ids[request])

    def _start(self, request: int) -> None:
        if isinstance(self.parent, InOrderRequests):
            self.parent._start(self.ids[request])
        else:
            self.parent.infer(self.ids[request])

    def _wait(self, request: int) -> None:
        if isinstance(self.parent, InOrderRequests):
            self.parent._wait(self.ids[request])

    def close(self) -> None:
        """The parent's owner closes it; a view only stops using it."""


def views(parent: Engine, counts: list[int]) -> list[EngineView]:
    """Split the parent's requests into consecutive views of ``counts`` requests each."""
    if sum(counts) > parent.requests:
        raise ValueError(f"{sum(counts)} requests asked of an engine with {parent.requests}")
    starts = [sum(counts[:i]) for i in range(len(counts))]
    return [EngineView(parent, list(range(start, start + count))) for start, count in zip(starts, counts, strict=True)]
