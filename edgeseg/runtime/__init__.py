"""The run-time side after the engine: defect regions and pass/fail verdicts (sources, the
streaming loop and sinks follow)."""
