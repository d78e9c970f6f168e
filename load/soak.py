"""soak: modest steady load for a long time (off by default; enable performance.soak), to catch leaks and drift.

locust -f load/soak.py --headless -u 10 -r 2 -t 30m --host http://127.0.0.1:8000
"""

from common import KundliUser, pacing
from locust import between


class SoakUser(KundliUser):
    wait_time = pacing(between(1, 3))
