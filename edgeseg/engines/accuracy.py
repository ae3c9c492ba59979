"""Accuracy of an engine on real frames: pixel agreement with the fp32 reference graph and,
where ground truth exists, per-class IoU and mIoU of both. Used by the compile-time parity gate
and by ``edgeseg verify``; run side (numpy, and ONNX Runtime or OpenVINO for the reference)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from edgeseg.data.frames import MASK_RESIZE, FrameSet
from edgeseg.engines.base import Engine, InOrderRequests, IOSpec
from edgeseg.errors import EngineError
from edgeseg.metrics import confusion_matrix, iou_report
from edgeseg.progress import progress

# The parity gate: what a compiled model must show against the fp32 reference before it is kept.
MIN_AGREEMENT = {"fp32": 0.999, "fp16": 0.99, "bf16": 0.99}
MAX_INT8_MIOU_DROP = 0.01  # one mIoU point
MIN_INT8_AGREEMENT_WITHOUT_TRUTH = 0.98


def run_frames(engine: Engine, frames: np.ndarray, show_progress: bool = False, desc: str = "engine") -> np.ndarray:
    """Masks of every frame through the engine's own buffers (the last batch padded by repeating)."""
    return run_frames_with_confidence(engine, frames, show_progress, desc, False)[0]


def run_frames_with_confidence(engine: Engine, frames: np.ndarray, show_progress: bool = False,
                               desc: str = "engine", confidence: bool = True) -> tuple[np.ndarray, np.ndarray | None]:
    """Masks and (where the engine gives it and it is asked for) the confidence of every frame."""
    batch = engine.spec.batch
    masks = np.empty(frames.shape[:3], np.uint8)
    sure = np.empty(frames.shape[:3], np.float32) if confidence and engine.confidence is not None else None
    for start in progress(range(0, len(frames), batch), desc=desc, unit="batch", disable=not show_progress,
                          leave=False):
        chunk = frames[start:start + batch]
        engine.input[:len(chunk)] = chunk
        engine.input[len(chunk):] = chunk[-1]
        engine.infer()
        masks[start:start + len(chunk)] = engine.mask[:len(chunk)]
        if sure is not None and engine.confidence is not None:
            sure[start:start + len(chunk)] = engine.confidence[:len(chunk)]
    return masks, sure


class ReferenceEngine(InOrderRequests):
    """The fp32 graph as exported (already proven against PyTorch at export), as an Engine like
    any other, so the gate runs it and the candidate the same way: ONNX Runtime on the CPU where
    installed, else OpenVINO held to fp32. One request, run in the caller's thread."""

    def __init__(self, graph: Path, frame_shape: tuple[int, ...]):
        """``frame_shape``: (height, width, channels) of the frames it will be given."""
        self.graph = Path(graph)
        run, shape, self.runtime = _reference_runtime(self.graph)
        batch = shape[0] if isinstance(shape[0], int) else 1
        height, width, channels = frame_shape
        spec = IOSpec("frames", batch, height, width, channels, "", "mask", None, False)
        super().__init__(spec, 1)
        self.backend = self.runtime.split()[0]
        self._run = run

    def infer(self, request: int = 0) -> None:
        self.masks[request][...] = self._run(self.inputs[request])

    def _start(self, request: int) -> None:
        self.infer(request)

    def _wait(self, request: int) -> None:
        """Done already: the reference runs synchronously in ``_start``."""


def _reference_runtime(graph: Path):
    """(run(frames) -> masks, input shape, "runtime version") for the fp32 graph."""
    try:
        import onnxruntime as ort
    except ImportError:
        ort = None
    if ort is not None:
        session = ort.InferenceSession(str(graph), providers=["CPUExecutionProvider"])
        name, shape = session.get_inputs()[0].name, session.get_inputs()[0].shape
        return (lambda x: session.run(["mask"], {name: x})[0]), shape, f"onnxruntime {ort.__version__}"
    try:
        import openvino as ov
    except ImportError:
        raise EngineError("no runtime for the fp32 reference", graph,
                          "install onnxruntime or openvino to compare against it") from None
    compiled = ov.Core().compile_model(str(graph), "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    shape = [d.get_length() if d.is_static else None for d in compiled.inputs[0].get_partial_shape()]
    request = compiled.create_infer_request()
    version = f"openvino {ov.get_version().split('-')[0]}"
    return (lambda x: request.infer({0: x})[compiled.output("mask")]), shape, version


@dataclass
class AccuracyReport:
    images: int
    pixel_agreement: float
    engine: dict | None  # IoU report against ground truth, at the model's input size
    reference: dict | None
    source: str
    engine_frame_size: dict | None = None  # ... at each image's own size, as a station writes masks
    reference_frame_size: dict | None = None

    @property
    def miou_drop(self) -> float | None:
        """What the engine loses against the fp32 graph: at frame size where known, else at model size."""
        engine, reference = self.engine_frame_size or self.engine, self.reference_frame_size or self.reference
        if engine is None or reference is None:
            return None
        return reference["miou"] - engine["miou"]

    def to_dict(self) -> dict:
        return {"images": self.images, "pixel_agreement": round(self.pixel_agreement, 6),
                "miou_drop": None if self.miou_drop is None else round(self.miou_drop, 4),
                "engine": self.engine, "reference": self.reference,
                "engine_frame_size": self.engine_frame_size, "reference_frame_size": self.reference_frame_size,
                "source": self.source}


def measure(engine_masks: np.ndarray, reference_masks: np.ndarray, frames: FrameSet,
            class_names: list[str]) -> AccuracyReport:
    agreement = float((engine_masks == reference_masks).mean())
    report = AccuracyReport(len(frames), agreement, None, None, frames.source)
    if frames.truth is not None:
        n = len(class_names)
        report.engine = iou_report(confusion_matrix(engine_masks, frames.truth, n), class_names)
        report.reference = iou_report(confusion_matrix(reference_masks, frames.truth, n), class_names)
    if frames.native_truth is not None:
        report.engine_frame_size = iou_report(frame_size_confusion(engine_masks, frames.native_truth, n), class_names)
        report.reference_frame_size = iou_report(frame_size_confusion(reference_masks, frames.native_truth, n),
                                                 class_names)
    return report


def frame_size_confusion(masks: np.ndarray, native_truth: list[np.ndarray], classes: int) -> np.ndarray:
    """The confusion matrix of model-size masks scaled to each image's own size (nearest, as the
    runtime scales them) against the ground truth at that size."""
    confusion = np.zeros((classes, classes), np.int64)
    for mask, truth in zip(masks, native_truth, strict=True):
        scaled = cv2.resize(mask, (truth.shape[1], truth.shape[0]), interpolation=MASK_RESIZE)
        confusion += confusion_matrix(scaled, truth, classes)
    return confusion


def gate_rules() -> str:
    """The gate in words, from the thresholds themselves (for help texts and docs)."""
    return (f"fp32 >= {100 * MIN_AGREEMENT['fp32']:g} % pixel agreement, fp16 and bf16 >= "
            f"{100 * MIN_AGREEMENT['fp16']:g} %, int8 loses at most {100 * MAX_INT8_MIOU_DROP:.1f} mIoU point "
            f"(without masks: >= {100 * MIN_INT8_AGREEMENT_WITHOUT_TRUTH:g} % agreement)")


def _change(drop: float) -> str:
    return f"lost {100 * drop:.2f}" if drop >= 0 else f"gained {-100 * drop:.2f}"


def gate(report: AccuracyReport, precision: str) -> tuple[bool, str]:
    """(passed, the rule in words) for a precision."""
    if precision == "int8":
        if report.miou_drop is not None:
            where = "at frame size" if report.engine_frame_size is not None else "at model size"
            return (report.miou_drop <= MAX_INT8_MIOU_DROP + 1e-9,
                    f"int8 loses at most {100 * MAX_INT8_MIOU_DROP:.1f} mIoU point against the fp32 graph "
                    f"({_change(report.miou_drop)} {where})")
        return (report.pixel_agreement >= MIN_INT8_AGREEMENT_WITHOUT_TRUTH,
                f"without ground truth, the int8 engine agrees with the fp32 graph on at least "
                f"{100 * MIN_INT8_AGREEMENT_WITHOUT_TRUTH:.0f} % of pixels ({100 * report.pixel_agreement:.2f} %)")
    need = MIN_AGREEMENT[precision]
    return (report.pixel_agreement >= need,
            f"the {precision} engine agrees with the fp32 graph on at least {100 * need:g} % of pixels "
            f"({100 * report.pixel_agreement:.3f} %)")
