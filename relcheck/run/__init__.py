"""A checklist run: the pytest plugin (wiring), outcome statuses, results, the report and manifest, history, triggers,
sign-offs over a report, and running phases in a subprocess."""
