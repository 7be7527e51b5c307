"""The procedural cross-modality person generator behind the ``synthetic`` dataset."""
