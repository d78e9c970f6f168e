"""stress: closed-loop users without think time, stepped up until the SLA or the error budget breaks.

    RELCHECK_STRESS_STEPS=1,2,4,8,16,32 RELCHECK_STRESS_STEP_S=5 RELCHECK_STRESS_P95_MS=250 \\
    locust -f load/stress.py --headless --host http://127.0.0.1:8000
"""

from common import KundliUser, pacing
from locust import constant

from relcheck.probes.locustrec import StepLoadShape  # noqa: F401  (the step ramp)


class StressUser(KundliUser):
    wait_time = pacing(constant(0))
