"""edgeseg: semantic segmentation for inspection cameras, from labelled images to a verified
engine on the device.

Importing this package (the run side) never imports torch or onnx; the build side
(``edgeseg.training``, ``edgeseg.export``, ``edgeseg.models``) imports them lazily.
"""

__version__ = "0.1.0"
