"""What every HTTP handler (API and dashboard) works with, built by the composition root."""

from __future__ import annotations

from dataclasses import dataclass

from projections.service import Projections
from services.coordination.application import Coordination
from services.registries import Registries


@dataclass(frozen=True)
class HttpContext:
    projections: Projections
    coordination: Coordination
    registries: Registries
