"""Per-stage timing into preallocated arrays, summarised as p50/p90/p99/max (ms).

The percentiles cover the most recent ``window`` frames (a run may last all day); the maximum
and the count cover the whole run."""

from __future__ import annotations

import numpy as np

STAGES = ("capture_wait", "preprocess", "infer", "postprocess", "sink", "end_to_end")


class StageTimes:
    def __init__(self, stages: tuple[str, ...] = STAGES, window: int = 65536):
        self.stages = stages
        self.window = window
        # seconds; filled now, not np.zeros: its pages are resident from the start, so a station's
        # RSS does not creep up over its first window of frames (docs/measurements/station.md)
        self.samples = np.full((len(stages), window), 0.0)
        self.maximum = np.zeros(len(stages), np.float64)
        self.count = 0
        self._row = {name: i for i, name in enumerate(stages)}

    def reset(self) -> None:
        """Forget what was recorded (after a warm-up)."""
        self.maximum[:] = 0
        self.count = 0

    def add(self, values: np.ndarray) -> None:
        """One frame's stage durations in seconds, in ``stages`` order."""
        np.copyto(self.samples[:, self.count % self.window], values)
        np.maximum(self.maximum, values, out=self.maximum)
        self.count += 1

    def recent(self, stage: str) -> np.ndarray:
        return self.samples[self._row[stage], :min(self.count, self.window)]

    def p50_ms(self, stage: str = "end_to_end") -> float:
        values = self.recent(stage)
        return float(np.median(values)) * 1e3 if len(values) else 0.0

    def summary(self) -> dict:
        out = {}
        for i, stage in enumerate(self.stages):
            values = self.recent(stage) * 1e3
            if not len(values):
                continue
            p50, p90, p99 = np.percentile(values, (50, 90, 99))
            out[stage] = {"p50_ms": round(float(p50), 3), "p90_ms": round(float(p90), 3),
                          "p99_ms": round(float(p99), 3), "max_ms": round(float(self.maximum[i]) * 1e3, 3),
                          "mean_ms": round(float(values.mean()), 3)}
        return out

    def table(self) -> str:
        rows = [f"{'stage':<13}{'p50':>9}{'p90':>9}{'p99':>9}{'max':>9}  ms"]
        for stage, s in self.summary().items():
            rows.append(f"{stage:<13}{s['p50_ms']:>9.2f}{s['p90_ms']:>9.2f}{s['p99_ms']:>9.2f}{s['max_ms']:>9.2f}")
        return "\n".join(rows)
