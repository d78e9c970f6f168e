"""Shared pieces of the kundli-service scenarios: request payloads and the realistic request mix. Tokens, the auth
header and pacing come from relcheck.scenario ($RELCHECK_TOKENS, $RELCHECK_AUTH_*, $RELCHECK_RATE / $RELCHECK_WAIT).
"""

from __future__ import annotations

import random

from locust import FastHttpUser, between, task

from relcheck.scenario import BASELINE_TOKENS, TOKENS, auth, pacing  # noqa: F401  (the scenarios import them here)

BIRTHS = [
    {"datetime": "1990-08-15T10:00:00+05:30", "latitude": 28.61, "longitude": 77.21},
    {"datetime": "1985-01-26T06:45:00+05:30", "latitude": 19.07, "longitude": 72.87},
    {"datetime": "2001-11-03T22:10:00+05:30", "latitude": 12.97, "longitude": 77.59},
    {"datetime": "1976-04-30T13:20:00+00:00", "latitude": 51.50, "longitude": -0.12},
]


def new_birth() -> dict:
    """A known birth (cache hit) three times in four, otherwise a fresh minute (cache miss)."""
    birth = dict(random.choice(BIRTHS))
    if random.random() < 0.25:
        birth["datetime"] = birth["datetime"].replace(":00+", f":{random.randint(10, 59)}+", 1)
    return birth


class KundliUser(FastHttpUser):
    """The realistic mix: mostly reads, some calculations, a few compatibility checks."""

    abstract = True
    wait_time = between(0.2, 0.6)
    tokens: dict[str, str] = TOKENS
    chart_pool: list[int] = []  # charts this class of users created (a subclass may keep its own)
    chart_id: int | None = None

    def auth(self, role: str) -> dict:
        return auth(role, self.tokens)

    def on_start(self) -> None:
        self.chart_id = self.create_chart()

    def create_chart(self) -> int | None:
        with self.client.post(
            "/v1/kundli",
            json={"name": "load", "birth": new_birth()},
            headers=self.auth("operator"),
            name="/v1/kundli",
            catch_response=True,
        ) as response:
            if response.status_code == 201:
                chart_id = response.json()["id"]
                self.chart_pool.append(chart_id)
                return chart_id
            response.failure(f"HTTP {response.status_code}")
        return None

    def some_chart(self) -> int:
        return self.chart_id or (random.choice(self.chart_pool) if self.chart_pool else 1)

    @task(10)
    def read_chart(self) -> None:
        self.client.get(f"/v1/kundli/{self.some_chart()}", headers=self.auth("viewer"), name="/v1/kundli/{chart_id}")

    @task(4)
    def yogas(self) -> None:
        self.client.get(
            f"/v1/kundli/{self.some_chart()}/yogas", headers=self.auth("viewer"), name="/v1/kundli/{chart_id}/yogas"
        )

    @task(3)
    def calculate(self) -> None:
        self.create_chart()

    @task(2)
    def compatibility(self) -> None:
        other = random.choice(self.chart_pool) if self.chart_pool else self.some_chart()
        self.client.post(
            "/v1/compatibility",
            json={"chart_a": self.some_chart(), "chart_b": other},
            headers=self.auth("viewer"),
            name="/v1/compatibility",
        )

    @task(1)
    def version(self) -> None:
        self.client.get("/version", name="/version")
