"""Data: sample records, datasets, transforms, samplers and loaders."""
