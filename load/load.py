"""load: steady users with think time on the realistic mix, for a set time.

    RELCHECK_TOKENS='{"viewer": "...", "operator": "..."}' \\
    locust -f load/load.py --headless -u 20 -r 20 -t 30s --host http://127.0.0.1:8000

With RELCHECK_BASELINE_HOST and RELCHECK_CANDIDATE_HOST set (and no --host; baseline tokens in
RELCHECK_BASELINE_TOKENS), half the users load each host at the same time: an A/B comparison in which both
versions see the same machine noise.
"""

import os

from common import BASELINE_TOKENS, KundliUser, pacing
from locust import between

BASELINE, CANDIDATE = os.environ.get("RELCHECK_BASELINE_HOST"), os.environ.get("RELCHECK_CANDIDATE_HOST")


class LoadUser(KundliUser):
    abstract = bool(BASELINE)
    wait_time = pacing(between(0.2, 0.6))


if BASELINE:

    class BaselineUser(LoadUser):
        abstract = False
        host = BASELINE
        tokens = BASELINE_TOKENS
        chart_pool = []

    class CandidateUser(LoadUser):
        abstract = False
        host = CANDIDATE
        chart_pool = []
