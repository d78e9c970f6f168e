"""Request and response schemas (the API contract, published as OpenAPI at /openapi.json)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Birth(Strict):  # as documented, strictly: JSON true is no latitude, 0 no moment (pydantic would read both)
    datetime: AwareDatetime = Field(description="Moment of birth, ISO 8601 with a UTC offset")
    latitude: float = Field(ge=-90, le=90, strict=True, description="Degrees, north positive")
    longitude: float = Field(ge=-180, le=180, strict=True, description="Degrees, east positive")

    @field_validator("datetime", mode="before")
    @classmethod
    def _not_a_number(cls, value):
        if isinstance(value, (int, float)):
            raise ValueError("must be an ISO 8601 date-time string")
        return value


Ayanamsa = Literal["lahiri", "raman", "krishnamurti"]


class ChartRequest(Strict):
    name: str = Field(min_length=1, max_length=200)
    birth: Birth
    ayanamsa: Ayanamsa | None = Field(default=None, description="Sidereal reference; default KUNDLI_DEFAULT_AYANAMSA")


class PlanetOut(BaseModel):
    planet: str
    longitude: float
    sign: str
    degree_in_sign: float
    nakshatra: str
    house: int
    retrograde: bool


class AscendantOut(BaseModel):
    longitude: float
    sign: str


class ChartOut(BaseModel):
    id: int
    name: str
    birth: Birth
    ayanamsa: Ayanamsa
    ascendant: AscendantOut
    planets: list[PlanetOut]
    created_at: datetime


class YogaOut(BaseModel):
    name: str
    planets: list[str]
    description: str


class YogasOut(BaseModel):
    chart_id: int
    yogas: list[YogaOut]


class CompatibilityRequest(Strict):
    chart_a: int = Field(gt=0)
    chart_b: int = Field(gt=0)


class CompatibilityOut(BaseModel):
    chart_a: int
    chart_b: int
    kootas: dict[str, float]
    points: float
    max_points: float
    score: float
    manglik_match: bool


class CompatibilityReportOut(CompatibilityOut):
    id: int
    created_at: datetime


class TokenRequest(Strict):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=256)


class TokenOut(BaseModel):
    token: str
    role: str


class UserCreate(Strict):
    username: str = Field(pattern=r"^[a-z][a-z0-9_.-]{2,63}$")
    role: Literal["viewer", "operator", "admin"]
    password: str | None = Field(default=None, min_length=12, max_length=256)


class UserOut(BaseModel):
    id: int
    username: str
    role: str


class AuditEntry(BaseModel):
    id: int
    at: datetime
    actor: str
    action: str
    object_type: str
    object_id: str
    detail: dict


class JobOut(BaseModel):
    job: str
    chart_id: int
    queued: int


class HealthOut(BaseModel):
    status: Literal["ok", "unavailable"]
    database: str
    schema_revision: str | None
    schema_head: str


class VersionOut(BaseModel):
    service: str
    version: str
