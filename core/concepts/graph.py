"""The concept map's layout: one column per area (in course order, left to right), and within a column
an order that keeps related concepts level with each other, so edges run mostly sideways.

The map draws the backbone of the relations, not all of them: a link implied by a chain of others
(ResNet builds on CNN builds on neural networks, so "ResNet builds on neural networks" goes) is
left out, which halves the lines. Each concept's own page still lists every relation.

Plain numpy and sorting, no graph library: the same catalogue always gives the same picture, and
a new concept file moves only its own column.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from core.concepts import AREAS, Concept

ROW_GAP = 1.0  # vertical distance between two concepts of a column; columns are 1 apart
SWEEPS = 6  # barycentre passes; the order settles after two or three on a catalogue this size


@dataclass(frozen=True)
class MapNode:
    id: str
    area: str
    x: float
    y: float


@dataclass(frozen=True)
class MapEdge:
    source: str  # the concept whose file names the relation
    target: str
    kind: str  # builds_on | is_a | used_in: "source <kind> target"


@dataclass(frozen=True)
class ConceptMap:
    nodes: tuple[MapNode, ...]
    edges: tuple[MapEdge, ...]
    columns: tuple[tuple[str, float], ...]  # (area, x) of each column that has concepts

    def position(self, concept_id: str) -> tuple[float, float]:
        node = next(n for n in self.nodes if n.id == concept_id)
        return node.x, node.y

    def curve(self, edge: MapEdge, points: int = 15) -> tuple[np.ndarray, np.ndarray]:
        """The edge as a gentle quadratic Bezier curve, (points,) x and y. On a grid, straight lines run
        through the nodes between their ends (a column's neighbours, a row's far end); a bend of a
        sixth of the length, or a third within a column, takes them around."""
        (x0, y0), (x1, y1) = self.position(edge.source), self.position(edge.target)
        bend = 1 / 3 if x0 == x1 else 1 / 6
        # control point: the midpoint pushed sideways (perpendicular to the chord, always to its left)
        cx, cy = (x0 + x1) / 2 - bend * (y1 - y0), (y0 + y1) / 2 + bend * (x1 - x0)
        s = np.linspace(0, 1, points)
        return ((1 - s) ** 2 * x0 + 2 * s * (1 - s) * cx + s ** 2 * x1,
                (1 - s) ** 2 * y0 + 2 * s * (1 - s) * cy + s ** 2 * y1)


def _all_edges(concepts: list[Concept]) -> list[MapEdge]:
    """One edge per related pair (a relation named in both files is drawn once, as the first file says)."""
    ids, seen, edges = {c.id for c in concepts}, set(), []
    for concept in sorted(concepts, key=lambda c: c.id):
        for relation in concept.related:
            pair = frozenset((concept.id, relation.id))
            if relation.id in ids and relation.id != concept.id and pair not in seen:
                seen.add(pair)
                edges.append(MapEdge(concept.id, relation.id, relation.kind))
    return edges


def _prerequisite(edge: MapEdge) -> tuple[str, str]:
    """(earlier idea, later idea): "A builds on B" and "A is a B" put B first; "A is used in B" puts A first."""
    return (edge.source, edge.target) if edge.kind == "used_in" else (edge.target, edge.source)


def backbone(edges: list[MapEdge]) -> list[MapEdge]:
    """The edges not implied by a longer path of prerequisites (a transitive reduction; a cycle in the
    relations only means its edges are kept)."""
    after: dict[str, set[str]] = {}
    for edge in edges:
        first, then = _prerequisite(edge)
        after.setdefault(first, set()).add(then)

    def reachable_without(start: str, goal: str) -> bool:  # by a path of two or more edges
        frontier, seen = [n for n in after.get(start, ()) if n != goal], set()
        while frontier:
            node = frontier.pop()
            if node == goal:
                return True
            if node not in seen:
                seen.add(node)
                frontier += after.get(node, ())
        return False

    return [edge for edge in edges if not reachable_without(*_prerequisite(edge))]


def concept_map(concepts: list[Concept] | tuple[Concept, ...]) -> ConceptMap:
    concepts = list(concepts)
    edges = backbone(_all_edges(concepts))
    areas = [area for area in AREAS if any(c.area == area for c in concepts)]
    column_of = {c.id: areas.index(c.area) for c in concepts}
    neighbours: dict[str, list[str]] = {c.id: [] for c in concepts}
    for edge in edges:
        neighbours[edge.source].append(edge.target)
        neighbours[edge.target].append(edge.source)
    # Start alphabetically, then repeatedly sort each column by the mean height of its neighbours in
    # other columns (the barycentre heuristic for fewer edge crossings); ties keep the id order.
    columns = [sorted(c.id for c in concepts if column_of[c.id] == i) for i in range(len(areas))]
    height = _heights(columns)
    for _ in range(SWEEPS):
        for i, column in enumerate(columns):
            def barycentre(node: str) -> float:
                others = [height[n] for n in neighbours[node] if column_of[n] != i]
                return float(np.mean(others)) if others else height[node]
            columns[i] = sorted(column, key=lambda node: (barycentre(node), node))
            height = _heights(columns)
    area_of = {c.id: c.area for c in concepts}
    nodes = tuple(MapNode(node, area_of[node], float(i), height[node])
                  for i, column in enumerate(columns) for node in column)
    return ConceptMap(nodes, tuple(edges), tuple((area, float(i)) for i, area in enumerate(areas)))


def _heights(columns: list[list[str]]) -> dict[str, float]:
    """Centre every column on y = 0, top to bottom in list order (higher y is drawn higher); every
    other column sits a third of a row lower, so a level edge does not run through a middle node."""
    return {node: ROW_GAP * ((len(column) - 1) / 2 - row - (i % 2) / 3)
            for i, column in enumerate(columns) for row, node in enumerate(column)}


def map_label(title: str) -> str:
    """A short name for a node: "Residual networks (ResNet)" -> "ResNet", "Optimisers: SGD, momentum,
    Adam and AdamW" -> "Optimisers", "Autoencoders and variational autoencoders (VAE)" -> "Autoencoders
    and VAE". Only a short Latin parenthesis (an acronym) replaces the name; a Chinese one is an alias."""
    head = title.replace("：", ":").split(":", 1)[0].strip()
    for open_, close in (("(", ")"), ("（", "）")):
        if open_ in head and head.endswith(close):
            base, inner = (part.strip() for part in head[:-1].split(open_, 1))
            if not (inner.isascii() and len(inner) <= 8):
                return base
            for joint, space in ((" and ", ""), ("与", " ")):
                if joint in base:
                    return base.split(joint)[0] + joint + space + inner
            return inner
    return head


def wrap_label(text: str, width: int) -> str:
    """Lines of at most `width` columns joined by <br>, as even as they can be ("Backpropagation and /
    gradient descent", not a lone last word). A Chinese character counts two columns; Latin words stay
    whole, Chinese may break between any two characters (it has no spaces to break at)."""
    tokens = [(" ", 1) if token.isspace() else (token, sum(1 + _is_wide(ch) for ch in token))
              for token in re.findall(r"[^\s\u3000-\u9fff\uff00-\uffef]+|\s+|.", text)]
    lines = _fill(tokens, width)
    total = sum(size for _, size in tokens)
    for narrower in range(-(-total // max(len(lines), 1)), width):  # the narrowest with as few lines
        if len(candidate := _fill(tokens, narrower)) == len(lines):
            lines = candidate
            break
    return "<br>".join(lines)


def _is_wide(ch: str) -> bool:
    return "\u3000" <= ch <= "\u9fff" or "\uff00" <= ch <= "\uffef"


def _fill(tokens: list[tuple[str, int]], width: int) -> list[str]:
    lines, line, used = [], "", 0
    for token, size in tokens:
        if used + size > width and line.strip():
            lines.append(line.strip())
            line, used = "", 0
            if token == " ":
                continue
        line, used = line + token, used + size
    return [part for part in lines + [line.strip()] if part]
