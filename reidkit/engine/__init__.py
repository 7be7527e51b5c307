"""Training engine: fit loop, callbacks, feature extraction, checkpoints."""
