"""smoke: one user walking every route of the mix once a second or so — is anything broken?

locust -f load/smoke.py --headless -u 1 -t 10s --host http://127.0.0.1:8000
"""

from common import KundliUser, pacing
from locust import constant


class SmokeUser(KundliUser):
    wait_time = pacing(constant(0.5))
