"""reidkit: unsupervised cross-modality person re-identification.

Importing reidkit imports no method plugin; plugins load lazily through ``reidkit.registry``.
"""
from reidkit.method import BuildContext, EpochContext, EpochPlan, LabelLeakError, Method, ModalBatch

__version__ = "0.1.0"

__all__ = ["BuildContext", "EpochContext", "EpochPlan", "LabelLeakError", "Method", "ModalBatch", "__version__"]
