"""The concept catalogue: one bilingual TOML file per idea (see catalogue/SCHEMA.md), and its loader.

Every file is checked once, when the catalogue is first read; a problem raises `CatalogueError`
with one line per problem, each naming the file and the field, so content authors can fix them all
in one pass. Importing this package imports no torch and no streamlit.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from core.errors import LabError

CATALOGUE_DIR = Path(__file__).with_name("catalogue")
LANGUAGES = ("en", "zh")
SECTIONS = ("problem", "how", "when", "failure")
RELATION_KINDS = ("builds_on", "is_a", "used_in")
# Ordered as a course runs: the map draws one column per area, left to right.
AREAS: dict[str, dict[str, str]] = {
    "foundations": {"en": "Foundations", "zh": "基础"},
    "training": {"en": "Training", "zh": "训练"},
    "architectures": {"en": "Architectures", "zh": "网络结构"},
    "sequences": {"en": "Sequences", "zh": "序列模型"},
    "generative": {"en": "Generative models", "zh": "生成模型"},
    "reinforcement": {"en": "Reinforcement learning", "zh": "强化学习"},
    "practice": {"en": "Practice", "zh": "实践"},
    "applications": {"en": "Applications", "zh": "应用"},
}
_ID = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")
_TOP_LEVEL = {"id", "area", "demo", "presets", "tools", "title", "summary", "body", "formulas", "related",
              "references"}


@dataclass(frozen=True)
class Tool:
    """A tool of the lab a concept page can send its reader to ("Try it on your run")."""

    id: str
    command: str  # the same from a terminal; "{run}" stands for the finished run it works on
    on_run_page: bool  # a panel in the Tools section of a finished run's page (else part of the Train form)
    first: str = "digits-cnn"  # the preset that trains a run to use it on, while the reader has none
    trains: str = ""  # the preset the tool trains itself (an option or family of the Train form), if any

    @property
    def needs_run(self) -> bool:
        return "{run}" in self.command

    def command_for(self, run_id: str | None = None) -> str:
        return self.command.format(run=run_id or "RUN_ID")


# The tools of a finished image-classification run's page (ui/toolkit.py) and the Train form's options that go
# with them; the concept view says where each is (ui/concepts_view.py, TOOL_PLACES). The commands are checked
# against core.cli's parser by the tests.
TOOLS: dict[str, Tool] = {tool.id: tool for tool in (
    Tool("attack", "python -m core attack {run} --method pgd --eps 8 16 32", True),
    Tool("explain", "python -m core explain {run} picture.png --method gradcam --out heatmap.png", True),
    Tool("finetune", "python -m core train --preset digits-cnn --set model.init_from={run} --set model.lora_rank=4",
         True),
    Tool("compress", "python -m core compress {run} --quantize static --prune 0.5", True),
    Tool("export", "python -m core export {run} --format bundle", True),
    Tool("adversarial-training", "python -m core train --preset digits-cnn --set task_options.adversarial=true "
         "--set task_options.adv_method=pgd", False, first="", trains="digits-cnn"),
    # the student's teacher is a finished classifier of the same data (core.presets.distillation.TEACHER_PRESETS)
    Tool("distill", "python -m core train --preset digits-distill --set task_options.teacher={run}", False,
         trains="digits-distill"),
)}
TOOL_FAMILY = "classification"  # the family whose finished runs have the Tools section (ui/families/classification)


class CatalogueError(LabError, ValueError):
    """A concept file that breaks the schema; the message has one line per problem: file, field, what."""


@dataclass(frozen=True)
class Formula:
    latex: str
    caption: dict[str, str]  # {"en": ..., "zh": ...}


@dataclass(frozen=True)
class Relation:
    id: str
    kind: str  # builds_on | is_a | used_in, read as "this concept <kind> <id>"


@dataclass(frozen=True)
class Reference:
    authors: str
    year: int
    title: str
    venue: str = ""
    url: str = ""

    def citation(self) -> str:
        """'Authors (year). Title. Venue.' without doubled full stops when a title ends in '?' or '.'."""
        parts = [f"{self.authors} ({self.year})", self.title] + ([self.venue] if self.venue else [])
        return " ".join(part if part.endswith((".", "?", "!")) else part + "." for part in parts)


@dataclass(frozen=True)
class Concept:
    id: str
    area: str
    title: dict[str, str]
    summary: dict[str, str]
    body: dict[str, dict[str, str]]  # language -> section (problem, how, when, failure) -> Markdown
    formulas: tuple[Formula, ...]
    related: tuple[Relation, ...]
    presets: tuple[str, ...]  # may name presets core.config does not (yet) have; see validate_catalogue
    references: tuple[Reference, ...]
    demo: str | None = None
    tools: tuple[str, ...] = ()  # ids of TOOLS: where in the lab to try the idea on a run

    def tool_presets(self, have_run: bool) -> tuple[str, ...]:
        """Presets the "Try it on your run" box offers to train, in order, each once, leaving out the concept's own
        presets (shown above it): what a tool needs a run of while there is none, and what a tool trains itself."""
        wanted = [preset for tool in map(TOOLS.get, self.tools)
                  for preset in (tool.first if tool.needs_run and not have_run else "", tool.trains)]
        return tuple(preset for preset in dict.fromkeys(wanted) if preset and preset not in self.presets)

    def section(self, name: str, lang: str) -> str:
        return self.body[lang][name]


# ---- validation -------------------------------------------------------------------------------------

class _Problems:
    """Collects 'file: field: what' lines, so one bad file reports everything wrong with it."""

    def __init__(self, file: str):
        self.file, self.lines = file, []

    def add(self, field: str, message: str) -> None:
        self.lines.append(f"{self.file}: {field}: {message}")


def _text(raw: Any, field: str, problems: _Problems) -> str:
    if not isinstance(raw, str) or not raw.strip():
        problems.add(field, "missing or empty")
        return ""
    return raw.strip()


def _bilingual(raw: Any, field: str, problems: _Problems) -> dict[str, str]:
    if not isinstance(raw, dict):
        problems.add(field, "missing; expected a table with 'en' and 'zh'")
        return {lang: "" for lang in LANGUAGES}
    return {lang: _text(raw.get(lang), f"{field}.{lang}", problems) for lang in LANGUAGES}


def _table_list(raw: Any, field: str, problems: _Problems) -> list[dict]:
    if raw is None:
        return []
    if not isinstance(raw, list) or not all(isinstance(item, dict) for item in raw):
        problems.add(field, "expected an array of tables ([[...]])")
        return []
    return raw


def _parse(path: Path, raw: dict, problems: _Problems) -> Concept:
    from core.concepts.demos import DEMO_IDS  # torch-free module: demos import torch inside functions
    for key in sorted(set(raw) - _TOP_LEVEL):
        problems.add(key, f"unknown field; allowed: {', '.join(sorted(_TOP_LEVEL))}")
    concept_id = raw.get("id")
    if concept_id != path.stem:
        problems.add("id", f"{concept_id!r} must equal the file name {path.stem!r}")
    elif not _ID.match(concept_id):
        problems.add("id", f"{concept_id!r} must be lowercase letters, digits and single hyphens")
    area = raw.get("area")
    if area not in AREAS:
        problems.add("area", f"{area!r} is not one of: {', '.join(AREAS)}")
    demo = raw.get("demo")
    if demo is not None and demo not in DEMO_IDS:
        problems.add("demo", f"{demo!r} is not one of: {', '.join(DEMO_IDS)}")
    presets = raw.get("presets", [])
    if not isinstance(presets, list) or not all(isinstance(p, str) and p for p in presets):
        problems.add("presets", "expected an array of preset names")
        presets = []
    tools = raw.get("tools", [])
    if not isinstance(tools, list) or not all(isinstance(name, str) for name in tools):
        problems.add("tools", "expected an array of tool names")
        tools = []
    for i, name in enumerate(tools):
        if name not in TOOLS:
            problems.add(f"tools[{i}]", f"{name!r} is not one of: {', '.join(TOOLS)}")
        elif name in tools[:i]:
            problems.add(f"tools[{i}]", f"{name!r} is already listed above")
    tools = [name for name in dict.fromkeys(tools) if name in TOOLS]

    body_raw = raw.get("body") if isinstance(raw.get("body"), dict) else {}
    body = {}
    for lang in LANGUAGES:
        sections = body_raw.get(lang) if isinstance(body_raw.get(lang), dict) else {}
        for extra in sorted(set(sections) - set(SECTIONS)):
            problems.add(f"body.{lang}.{extra}", f"unknown section; allowed: {', '.join(SECTIONS)}")
        body[lang] = {name: _text(sections.get(name), f"body.{lang}.{name}", problems) for name in SECTIONS}

    formulas = []
    formula_tables = _table_list(raw.get("formulas"), "formulas", problems)
    if not formula_tables:
        problems.add("formulas", "at least one [[formulas]] entry is required")
    for i, entry in enumerate(formula_tables):
        latex = _text(entry.get("latex"), f"formulas[{i}].latex", problems)
        caption = {lang: _text(entry.get(lang), f"formulas[{i}].{lang}", problems) for lang in LANGUAGES}
        formulas.append(Formula(latex, caption))

    related = []
    for i, entry in enumerate(_table_list(raw.get("related"), "related", problems)):
        if entry.get("kind") not in RELATION_KINDS:
            problems.add(f"related[{i}].kind", f"{entry.get('kind')!r} is not one of: {', '.join(RELATION_KINDS)}")
        if entry.get("id") == concept_id:
            problems.add(f"related[{i}].id", "a concept cannot relate to itself")
        elif any(earlier.id == entry.get("id") for earlier in related):
            problems.add(f"related[{i}].id", f"{entry.get('id')!r} is already related above")
        related.append(Relation(str(entry.get("id")), str(entry.get("kind"))))

    references = []
    for i, entry in enumerate(_table_list(raw.get("references"), "references", problems)):
        year = entry.get("year")
        if not isinstance(year, int) or isinstance(year, bool) or not 1800 <= year <= 2100:
            problems.add(f"references[{i}].year", f"{year!r} is not a year (an integer such as 2015)")
            year = 0
        url = entry.get("url", "")
        if url and not (isinstance(url, str) and url.startswith(("https://", "http://"))):
            problems.add(f"references[{i}].url", f"{url!r} must start with https://")
            url = ""
        references.append(Reference(
            authors=_text(entry.get("authors"), f"references[{i}].authors", problems), year=year,
            title=_text(entry.get("title"), f"references[{i}].title", problems),
            venue=str(entry.get("venue", "")).strip(), url=url))

    return Concept(id=str(concept_id), area=str(area),
                   title=_bilingual(raw.get("title"), "title", problems),
                   summary=_bilingual(raw.get("summary"), "summary", problems),
                   body=body, formulas=tuple(formulas), related=tuple(related), presets=tuple(presets),
                   references=tuple(references), demo=demo, tools=tuple(tools))


def validate_catalogue(folder: Path | str = CATALOGUE_DIR, *, strict: bool = False) -> list[Concept]:
    """Read and check every `<id>.toml` in `folder`, sorted by id.

    `strict` also requires every preset to exist in `core.presets.PRESETS`; the app reads the
    catalogue leniently (a concept whose preset is not there yet simply shows no "Train this").
    """
    concepts, problems = [], []
    for path in sorted(Path(folder).glob("*.toml")):
        found = _Problems(path.name)
        try:
            raw = tomllib.loads(path.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            found.add("(file)", f"not valid TOML: {exc}")
            problems += found.lines
            continue
        concepts.append((path.name, _parse(path, raw, found)))
        problems += found.lines
    ids = {concept.id for _, concept in concepts}
    if strict:
        from core.presets import PRESETS
    for file, concept in concepts:  # cross-file checks, once every id is known
        found = _Problems(file)
        for i, relation in enumerate(concept.related):
            if relation.id not in ids and relation.id != concept.id:
                found.add(f"related[{i}].id", f"{relation.id!r} is not a concept in the catalogue")
        for i, name in enumerate(concept.presets):
            if strict and name not in PRESETS:
                found.add(f"presets[{i}]", f"{name!r} is not a preset in core.presets.PRESETS")
        for i, name in enumerate(concept.tools):  # what "Try it on your run" offers to train must exist too
            for wanted in (TOOLS[name].first, TOOLS[name].trains):
                if strict and wanted and wanted not in PRESETS:
                    found.add(f"tools[{i}]", f"{name!r} trains {wanted!r}, not a preset in core.presets.PRESETS")
        problems += found.lines
    if problems:
        raise CatalogueError(f"{len(problems)} problem(s) in the concept catalogue {folder}:\n" + "\n".join(problems))
    return [concept for _, concept in concepts]


# ---- the catalogue the app reads ---------------------------------------------------------------------

@lru_cache(maxsize=1)
def list_concepts() -> tuple[Concept, ...]:
    """Every concept of the shipped catalogue, in map order (by area, then id)."""
    order = list(AREAS)
    return tuple(sorted(validate_catalogue(CATALOGUE_DIR), key=lambda c: (order.index(c.area), c.id)))


def get_concept(concept_id: str) -> Concept | None:
    return next((c for c in list_concepts() if c.id == concept_id), None)


def finished_runs(store=None, limit: int = 50, task: str = TOOL_FAMILY) -> list:
    """Completed runs of `task` (core.store.Run), newest first: by default those a concept's run tools work on, the
    family whose run page has the Tools section; the run demos (core.concepts.run_demos) ask for their own."""
    from core.store import RunStore
    from core.store.records import COMPLETED
    store = RunStore() if store is None else store
    return [run for run in store.get_runs(statuses=[COMPLETED]).values() if run.task == task][:limit]


def search(query: str, lang: str = "en", area: str | None = None,
           concepts: tuple[Concept, ...] | list[Concept] | None = None) -> list[Concept]:
    """Concepts matching every word of `query`, best first: a title hit outranks a summary hit,
    which outranks a body hit. The id and English title always count, since technical terms
    (ResNet, LSTM, Adam) are typed in English whatever the interface language."""
    concepts = list_concepts() if concepts is None else concepts
    words = query.lower().split()
    scored = []
    for rank, concept in enumerate(concepts):
        if area and concept.area != area:
            continue
        title = f"{concept.id} {concept.title[lang]} {concept.title['en']}".lower()
        summary = f"{concept.summary[lang]}".lower()
        body = " ".join(concept.body[lang].values()).lower()
        score = 0
        for word in words:
            hit = 4 if word in title else 2 if word in summary else 1 if word in body else 0
            if not hit:
                break
            score += hit
        else:
            scored.append((-score, rank, concept))
    return [concept for *_, concept in sorted(scored, key=lambda item: item[:2])]


__all__ = ["AREAS", "CATALOGUE_DIR", "CatalogueError", "Concept", "Formula", "LANGUAGES", "RELATION_KINDS",
           "Reference", "Relation", "SECTIONS", "TOOLS", "TOOL_FAMILY", "Tool", "finished_runs", "get_concept",
           "list_concepts", "search", "validate_catalogue"]
