"""Reporting: plots and summary.md drawn from a results.csv alone."""
