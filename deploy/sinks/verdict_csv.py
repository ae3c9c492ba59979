"""A plant's own sink for ``edgeseg serve``, as one file: one CSV row per inspected part (or per
failed part), for a line's spreadsheet or a PLC that polls a file share. Named in the station file:

    sinks:
      - plugin: sinks/verdict_csv.py     # relative to the station file
        options: {path: verdicts.csv, only_failed: true}

Copy it as the start of one's own (an OPC UA server, a PLC's digital output): the constructor
takes the ``SinkContext`` and the options, ``write`` is called with every frame's result in frame
order on the camera's own thread, ``close`` at the end of the run. A write that raises is logged
and counted; the camera goes on.
"""

from __future__ import annotations

import csv
import time
from pathlib import Path

import edgeseg

FIELDS = ("time", "station", "camera", "frame", "file", "verdict", "reasons", "regions")


class VerdictCsv(edgeseg.Sink):
    def __init__(self, context: edgeseg.SinkContext, path: str = "verdicts.csv", only_failed: bool = False):
        target = Path(path)
        if not target.is_absolute():  # relative: in the camera's results folder
            target = (context.out or Path.cwd()) / target
        self.context, self.only_failed = context, only_failed
        new = not target.exists() or target.stat().st_size == 0
        self.file = target.open("a", newline="", encoding="utf-8")
        self.rows = csv.writer(self.file)
        if new:
            self.rows.writerow(FIELDS)

    def write(self, result: edgeseg.FrameResult) -> None:
        verdict = result.inspection.verdict
        if self.only_failed and verdict.passed:
            return
        when = time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(result.timestamp))
        self.rows.writerow((when, self.context.station or "", self.context.camera or "", result.index,
                            result.name or "", "pass" if verdict.passed else "fail", "; ".join(verdict.reasons),
                            len(result.inspection.regions)))
        self.file.flush()  # a row a reader can see now, not at the end of the shift

    def close(self) -> None:
        self.file.close()
