"""Checking: every quantitative claim of the documents, with a verdict computed from numbers."""
