"""Locust scenarios (locustfiles): smoke, load, stress; run by path in a locust subprocess."""
