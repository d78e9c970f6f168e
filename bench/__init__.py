"""Benchmarks of the suite's own numbers (python -m bench [--quick]): ratios measured side by side in one run."""
