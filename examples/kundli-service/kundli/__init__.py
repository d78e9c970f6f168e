"""kundli-service: birth-chart calculations over HTTP, backed by PostgreSQL."""

__version__ = "1.1.0"
