"""relcheck: a release checklist as a pytest suite."""

__version__ = "0.1.0"
