"""Benchmarks that print figures (ratios against a named baseline measured in the same run)."""
