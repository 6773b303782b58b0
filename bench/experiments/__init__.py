"""Experiments: the documents' training runs (recipes, datasets, the training loop)."""
