"""Bench scenario: users on GET /version, the cheapest route (closed-loop unless BENCH_WAIT_S is set).

With RELCHECK_BASELINE_HOST and RELCHECK_CANDIDATE_HOST, half the users load each host at the same time.
"""

import os

from locust import FastHttpUser, constant, task

import relcheck.probes.locustrec  # noqa: F401  (exact latencies, unless RELCHECK_RECORDER=off)

BASELINE, CANDIDATE = os.environ.get("RELCHECK_BASELINE_HOST"), os.environ.get("RELCHECK_CANDIDATE_HOST")


class VersionUser(FastHttpUser):
    abstract = bool(BASELINE)
    wait_time = constant(float(os.environ.get("BENCH_WAIT_S", "0")))

    @task
    def version(self) -> None:
        self.client.get("/version", name="/version")


if BASELINE:

    class BaselineUser(VersionUser):
        abstract = False
        host = BASELINE

    class CandidateUser(VersionUser):
        abstract = False
        host = CANDIDATE
