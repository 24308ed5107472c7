"""The concept catalogue: data files describing the ideas the lab teaches, and their loader."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

CATALOGUE = Path(__file__).with_name("catalogue.json")


@dataclass(frozen=True)
class Concept:
    id: str
    title: str
    summary: str
    preset: str | None  # a preset that trains this idea, when the lab has one
    reference: str


@lru_cache(maxsize=1)
def list_concepts() -> tuple[Concept, ...]:
    from core.config import PRESETS
    concepts = tuple(Concept(**entry) for entry in json.loads(CATALOGUE.read_text(encoding="utf-8")))
    for concept in concepts:
        if concept.preset is not None and concept.preset not in PRESETS:
            raise ValueError(f"concept '{concept.id}' names unknown preset '{concept.preset}'")
    return concepts
