"""intima-classifier serving side: bundle loading, ONNX runtime, REST API, batch labelling, reports.

Nothing in this package imports torch or transformers.
"""

__version__ = "0.1.0"
