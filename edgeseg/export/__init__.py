"""Export to ONNX with pre- and post-processing folded in (build side: imports torch and onnx)."""
