"""A workflow's steps laid out as a graph, left to right, for dashboard/workflow_graph.jinja to draw as SVG on the
server (no chart library, no script).

Layered: a step's layer is the longest path to it from a step that waits for nothing, so every edge points right.
An edge that skips layers gets a passage in each layer it crosses, a slot of its own among the boxes, so it runs
between them and never behind one (where it would seem to link steps it does not). Within a layer, boxes and
passages are ordered by a few sweeps of the barycentre heuristic (each moves towards the mean height of its
neighbours in the layer just ordered), which removes most crossings; ties go by step number, so a workflow is always
drawn the same way. Each layer is centred on the tallest. An edge leaves its source's right side and reaches its
target's left side level, by a cubic Bézier between each two layers and a straight line through each passage.

Pure Python: the caller reads the steps, translates their labels and hands them over.
"""

import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise

BOX_WIDTH, BOX_HEIGHT = 176, 60
LAYER_GAP, ROW_GAP = 56, 16  # between two layers' boxes, and between two slots of a layer
PASSAGE_HEIGHT = 8  # the slot of an edge crossing a layer: edges side by side stay ROW_GAP + 8 apart
MARGIN = 8  # around the whole, so that the boxes' strokes are not cut
SWEEPS = 4  # each one down the layers and back up; more seldom removes another crossing
TEXT_INSET = 10  # from a box's left side to its texts
HEADING_Y, STATUS_Y, RESULT_Y = 20, 37, 52  # the texts' baselines, from a box's top
# What a box shows, in narrow characters (a wide one, as in Chinese, counts two); its <title> has the whole text.
HEADING_CHARACTERS, RESULT_CHARACTERS = 21, 22


@dataclass(frozen=True)
class Node:
    number: int  # the step's number in its workflow, 1..N
    label: str  # translated
    status: str
    status_label: str  # translated
    result: str
    url: str  # the step's computation page


@dataclass(frozen=True)
class Edge:
    source: int
    target: int
    waits_only: bool = False  # the target waits for the source to end without taking its result


@dataclass(frozen=True)
class Box:
    node: Node
    layer: int
    row: int  # among its layer's boxes, from the top
    x: float
    y: float
    width: float
    height: float
    label_text: str  # the label, cut to fit beside "#N"
    result_text: str  # the result on one line, cut to fit

    @property
    def text_x(self) -> float:
        return self.x + TEXT_INSET

    @property
    def heading_y(self) -> float:
        return self.y + HEADING_Y

    @property
    def status_y(self) -> float:
        return self.y + STATUS_Y

    @property
    def result_y(self) -> float:
        return self.y + RESULT_Y


@dataclass(frozen=True)
class EdgePath:
    d: str  # an SVG path
    source: int
    target: int
    waits_only: bool


@dataclass(frozen=True)
class Drawing:
    width: float
    height: float
    boxes: tuple[Box, ...]  # by step number
    edges: tuple[EdgePath, ...]  # in the order given


# A layer's slot: a step's number, or (source, target, layer) where an edge crosses a layer.
type Slot = int | tuple[int, int, int]


def draw(nodes: Sequence[Node], edges: Sequence[Edge]) -> Drawing:
    """The layout of a workflow's steps. ValueError if two steps share a number, an edge names a step that is not
    there, or the edges form a cycle (the workflow was not validated)."""
    by_number = {node.number: node for node in nodes}
    if len(by_number) != len(nodes):
        raise ValueError("two steps have the same number")
    for edge in edges:
        if edge.source not in by_number or edge.target not in by_number:
            raise ValueError(f"the edge {edge.source}→{edge.target} names a step that is not in the workflow")
    links = sorted({(edge.source, edge.target) for edge in edges})
    layer_of = _layers(list(by_number), links)

    # Each link's slots from its source to its target; a result edge and a wait edge between the same two steps
    # share them.
    routes = {
        (source, target): [
            source,
            *((source, target, layer) for layer in range(layer_of[source] + 1, layer_of[target])),
            target,
        ]
        for source, target in links
    }
    layers, before, after = _slots(layer_of, routes)
    _order(layers, before, after)

    tallest = max(map(_extent, layers), default=0)
    middle: dict[Slot, float] = {}  # each slot's vertical middle in the drawing
    for layer in layers:
        middle.update((slot, MARGIN + tallest / 2 + offset) for slot, offset in _offsets(layer).items())
    boxes = {
        number: _box(by_number[number], index, row, middle[number] - BOX_HEIGHT / 2)
        for index, layer in enumerate(layers)
        for row, number in enumerate(slot for slot in layer if isinstance(slot, int))
    }
    return Drawing(
        width=2 * MARGIN + len(layers) * BOX_WIDTH + max(len(layers) - 1, 0) * LAYER_GAP,
        height=2 * MARGIN + tallest,
        boxes=tuple(boxes[number] for number in sorted(boxes)),
        edges=tuple(
            EdgePath(
                _path(routes[edge.source, edge.target], layer_of, middle), edge.source, edge.target, edge.waits_only
            )
            for edge in edges
        ),
    )


def _layers(numbers: list[int], links: list[tuple[int, int]]) -> dict[int, int]:
    """Each step's layer, the length of the longest path to it, worked out in topological order (Kahn's)."""
    successors: dict[int, list[int]] = {number: [] for number in numbers}
    waiting_for = dict.fromkeys(numbers, 0)
    for source, target in links:
        successors[source].append(target)
        waiting_for[target] += 1
    layer_of = {number: 0 for number, count in waiting_for.items() if not count}
    ready = list(layer_of)
    while ready:
        number = ready.pop()
        for target in successors[number]:
            layer_of[target] = max(layer_of.get(target, 0), layer_of[number] + 1)
            waiting_for[target] -= 1
            if not waiting_for[target]:
                ready.append(target)
    if any(waiting_for.values()):
        stuck = sorted(number for number, count in waiting_for.items() if count)
        raise ValueError(f"the steps {stuck} are in a cycle or wait for one")
    return layer_of


def _slots(
    layer_of: dict[int, int], routes: dict[tuple[int, int], list[Slot]]
) -> tuple[list[list[Slot]], dict[Slot, list[Slot]], dict[Slot, list[Slot]]]:
    """Each layer's slots, boxes by step number then passages, and each slot's neighbours in the layers beside it."""
    layers: list[list[Slot]] = [[] for _ in range(max(layer_of.values(), default=-1) + 1)]
    for number in sorted(layer_of):
        layers[layer_of[number]].append(number)
    before: dict[Slot, list[Slot]] = {number: [] for number in layer_of}
    after: dict[Slot, list[Slot]] = {number: [] for number in layer_of}
    for route in routes.values():
        for passage in route[1:-1]:
            layers[passage[2]].append(passage)
        for left, right in pairwise(route):
            after.setdefault(left, []).append(right)
            before.setdefault(right, []).append(left)
    return layers, before, after


def _order(layers: list[list[Slot]], before: dict[Slot, list[Slot]], after: dict[Slot, list[Slot]]) -> None:
    """Reorders each layer in place: down the layers by the slots before, back up by the slots after."""
    # Heights from each layer's middle, as the layers are drawn centred: comparable from one layer to the next.
    middle: dict[Slot, float] = {}
    for layer in layers:
        middle.update(_offsets(layer))

    def reorder(layer: list[Slot], neighbours: dict[Slot, list[Slot]]) -> bool:
        def barycentre(slot: Slot) -> float:
            heights = [middle[other] for other in neighbours[slot]]
            return sum(heights) / len(heights) if heights else middle[slot]  # no neighbours: it stays

        ordered = sorted(layer, key=lambda slot: (barycentre(slot), _tie(slot)))
        if ordered == layer:
            return False
        layer[:] = ordered
        middle.update(_offsets(layer))
        return True

    for _ in range(SWEEPS):
        moved = False
        for layer in layers[1:]:
            moved |= reorder(layer, before)
        for layer in reversed(layers[:-1]):
            moved |= reorder(layer, after)
        if not moved:
            break


def _tie(slot: Slot) -> tuple[int, int, int]:
    """Boxes by step number, then passages by their edge."""
    return (0, slot, 0) if isinstance(slot, int) else (1, slot[0], slot[1])


def _height(slot: Slot) -> int:
    return BOX_HEIGHT if isinstance(slot, int) else PASSAGE_HEIGHT


def _extent(layer: list[Slot]) -> int:
    return sum(map(_height, layer)) + max(len(layer) - 1, 0) * ROW_GAP


def _offsets(layer: list[Slot]) -> dict[Slot, float]:
    """Each slot's middle, from the layer's middle."""
    offsets, top = {}, -_extent(layer) / 2
    for slot in layer:
        offsets[slot] = top + _height(slot) / 2
        top += _height(slot) + ROW_GAP
    return offsets


def _box(node: Node, layer: int, row: int, y: float) -> Box:
    return Box(
        node=node,
        layer=layer,
        row=row,
        x=_left(layer),
        y=y,
        width=BOX_WIDTH,
        height=BOX_HEIGHT,
        label_text=_cut(node.label, HEADING_CHARACTERS - len(f"#{node.number} ")),
        result_text=_cut(node.result, RESULT_CHARACTERS),
    )


def _left(layer: int) -> int:
    return MARGIN + layer * (BOX_WIDTH + LAYER_GAP)


def _path(route: list[Slot], layer_of: dict[int, int], middle: dict[Slot, float]) -> str:
    """From the source's right side through each passage to the target's left side, leaving and arriving level (so
    the arrow points right)."""
    x, y = _left(layer_of[route[0]]) + BOX_WIDTH, middle[route[0]]
    d = [f"M{_n(x)} {_n(y)}"]
    for slot in route[1:]:
        left, level = _left(slot[2] if isinstance(slot, tuple) else layer_of[slot]), middle[slot]
        bend = (left - x) / 2
        d.append(f"C{_n(x + bend)} {_n(y)} {_n(left - bend)} {_n(level)} {_n(left)} {_n(level)}")
        x, y = left + BOX_WIDTH, level
        if isinstance(slot, tuple):
            d.append(f"H{_n(x)}")
    return " ".join(d)


def _cut(text: str, characters: int) -> str:
    """The text on one line, with an ellipsis where it no longer fits in `characters` narrow characters."""
    text = " ".join(text.split())
    if _width(text) <= characters:
        return text
    kept, used = [], 1  # the ellipsis's
    for character in text:
        used += _width(character)
        if used > characters:
            break
        kept.append(character)
    return "".join(kept).rstrip() + "…"


def _width(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(character) in ("W", "F") else 1 for character in text)


def _n(value: float) -> str:
    return f"{value:.1f}".removesuffix(".0")
