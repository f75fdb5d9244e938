"""A workflow's graph is laid out in layers by longest path, left to right, without overlaps or needless crossings,
and its template draws it escaped, one link per step."""

import itertools
import random
import re
import xml.etree.ElementTree as ET

import pytest
from django.template.loader import render_to_string

from dashboard.workflows.drawing import (
    BOX_HEIGHT,
    BOX_WIDTH,
    LAYER_GAP,
    MARGIN,
    RESULT_CHARACTERS,
    ROW_GAP,
    Drawing,
    Edge,
    Node,
    draw,
)

NUMBER = re.compile(r"-?\d+(?:\.\d+)?")


def steps(count: int, **fields: str) -> list[Node]:
    defaults = {"label": "Add", "status": "queued", "status_label": "Queued", "result": ""}
    return [
        Node(number=number, url=f"/computations/{number}/", **{**defaults, **fields}) for number in range(1, count + 1)
    ]


def edges(*pairs: tuple[int, int]) -> list[Edge]:
    return [Edge(source, target) for source, target in pairs]


DIAMOND_WITH_SHORTCUT = edges((1, 2), (1, 3), (2, 4), (3, 4), (1, 4), (4, 5), (1, 5))


def random_graph(count: int, seed: int) -> list[Edge]:
    """Acyclic: every edge goes from a lower number to a higher one."""
    chance = random.Random(seed)
    return [
        Edge(source, target, chance.random() < 0.3)
        for source, target in itertools.combinations(range(1, count + 1), 2)
        if chance.random() < 0.08
    ]


GRAPHS = {
    "diamond with shortcuts": (steps(5), DIAMOND_WITH_SHORTCUT),
    "chain of 100": (steps(100), edges(*((number, number + 1) for number in range(1, 100)))),
    "fan-in 99 to 1": (steps(100), edges(*((number, 100) for number in range(1, 100)))),
    "fan-out 1 to 99": (steps(100), edges(*((1, number) for number in range(2, 101)))),
    "random 60": (steps(60), random_graph(60, seed=7)),
    "root to every step of a chain": (
        steps(30),
        edges(*((n, n + 1) for n in range(1, 30)), *((1, n) for n in range(3, 31))),
    ),
    "unconnected": (steps(4), []),
}


def segments(d: str) -> list[tuple[str, tuple[float, float], list[float]]]:
    """A path's curves (C) and lines (H), each with the point it starts from."""
    found, point = [], (0.0, 0.0)
    for command, arguments in re.findall(r"([MCH])([^MCH]*)", d):
        numbers = [float(number) for number in NUMBER.findall(arguments)]
        if command != "M":
            found.append((command, point, numbers))
        point = (numbers[0], point[1]) if command == "H" else (numbers[-2], numbers[-1])
    return found


def crossings(drawing: Drawing) -> int:
    """Pairs of edges that cross between two layers: each curve begins at a layer's right side and ends at the
    next one's left side, and two curves that leave the same side cross if they arrive in the opposite order."""
    curves = [
        (start, numbers[-1]) for edge in drawing.edges for command, start, numbers in segments(edge.d) if command == "C"
    ]
    return sum(
        1
        for ((x, y), end), ((other_x, other_y), other_end) in itertools.combinations(curves, 2)
        if x == other_x and (y - other_y) * (end - other_end) < 0
    )


def test_a_steps_layer_is_the_longest_path_to_it_not_the_shortest():
    drawing = draw(steps(5), DIAMOND_WITH_SHORTCUT)

    assert {box.node.number: box.layer for box in drawing.boxes} == {1: 0, 2: 1, 3: 1, 4: 2, 5: 3}


@pytest.mark.parametrize("name", GRAPHS)
def test_boxes_never_overlap_and_stay_inside_the_drawing(name):
    drawing = draw(*GRAPHS[name])

    for box in drawing.boxes:
        assert (box.width, box.height) == (BOX_WIDTH, BOX_HEIGHT)
        assert MARGIN <= box.x <= drawing.width - MARGIN - box.width
        assert MARGIN <= box.y <= drawing.height - MARGIN - box.height
    for one, other in itertools.combinations(drawing.boxes, 2):
        apart_across = one.x + one.width <= other.x or other.x + other.width <= one.x
        apart_down = one.y + one.height <= other.y or other.y + other.height <= one.y
        assert apart_across or apart_down, (one.node.number, other.node.number)


@pytest.mark.parametrize("name", GRAPHS)
def test_every_edge_goes_right_from_its_sources_right_side_to_its_targets_left_side(name):
    nodes, given = GRAPHS[name]
    drawing = draw(nodes, given)
    box = {each.node.number: each for each in drawing.boxes}

    assert [(edge.source, edge.target, edge.waits_only) for edge in drawing.edges] == [
        (edge.source, edge.target, edge.waits_only) for edge in given
    ]
    for edge in drawing.edges:
        source, target = box[edge.source], box[edge.target]
        assert source.layer < target.layer
        assert re.fullmatch(r"M\S+ \S+( C\S+ \S+ \S+ \S+ \S+ \S+( H\S+)?)+", edge.d), edge.d
        numbers = [float(number) for number in NUMBER.findall(edge.d)]
        assert numbers[:2] == pytest.approx([source.x + source.width, source.y + source.height / 2], abs=0.05)
        assert numbers[-2:] == pytest.approx([target.x, target.y + target.height / 2], abs=0.05)


def points_along(d: str) -> list[tuple[float, float]]:
    """Points along a path, 20 per curve and line."""
    points = []
    for command, (x0, y0), numbers in segments(d):
        for t in (step / 20 for step in range(21)):
            if command == "H":
                points.append((x0 + (numbers[0] - x0) * t, y0))
            else:
                x1, y1, x2, y2, x3, y3 = numbers
                weights = ((1 - t) ** 3, 3 * (1 - t) ** 2 * t, 3 * (1 - t) * t**2, t**3)
                points.append(
                    (
                        sum(w * x for w, x in zip(weights, (x0, x1, x2, x3), strict=True)),
                        sum(w * y for w, y in zip(weights, (y0, y1, y2, y3), strict=True)),
                    )
                )
    return points


@pytest.mark.parametrize("name", GRAPHS)
def test_no_edge_passes_behind_a_box(name):
    # An edge that skipped layers in a straight line would cross the boxes between, and seem to link them.
    drawing = draw(*GRAPHS[name])

    for edge in drawing.edges:
        for x, y in points_along(edge.d):
            inside = [
                box.node.number
                for box in drawing.boxes
                if box.x + 0.5 < x < box.x + box.width - 0.5 and box.y + 0.5 < y < box.y + box.height - 0.5
            ]
            assert not inside, (edge.source, edge.target, inside)


def test_the_barycentre_sweeps_uncross_two_crossed_edges():
    # By number alone 1 sits above 2 and 3 above 4, so 1→4 and 2→3 would cross.
    drawing = draw(steps(4), edges((1, 4), (2, 3)))

    assert crossings(drawing) == 0
    assert {box.node.number: (box.layer, box.row) for box in drawing.boxes} == {
        1: (0, 0),
        2: (0, 1),
        3: (1, 1),
        4: (1, 0),
    }


def test_the_sweeps_leave_far_fewer_crossings_than_step_numbers_alone(monkeypatch):
    swept = draw(*GRAPHS["random 60"])
    monkeypatch.setattr("dashboard.workflows.drawing.SWEEPS", 0)  # each layer in step number order

    assert crossings(swept) < crossings(draw(*GRAPHS["random 60"])) / 2


def test_the_layout_depends_on_the_graph_not_the_order_it_is_given_in():
    nodes, given = GRAPHS["random 60"]
    shuffled_nodes, shuffled_edges = list(nodes), list(given)
    random.Random(3).shuffle(shuffled_nodes)
    random.Random(4).shuffle(shuffled_edges)

    first, second = draw(nodes, given), draw(shuffled_nodes, shuffled_edges)

    assert first.boxes == second.boxes
    assert sorted(first.edges, key=lambda edge: (edge.source, edge.target)) == sorted(
        second.edges, key=lambda edge: (edge.source, edge.target)
    )


def test_a_chain_of_100_is_one_row_of_100_layers():
    drawing = draw(*GRAPHS["chain of 100"])

    assert drawing.width == 2 * MARGIN + 100 * BOX_WIDTH + 99 * LAYER_GAP
    assert drawing.height == 2 * MARGIN + BOX_HEIGHT
    assert [box.layer for box in drawing.boxes] == list(range(100))


def test_a_fan_in_of_99_is_two_layers_with_the_target_centred_on_the_tallest():
    drawing = draw(*GRAPHS["fan-in 99 to 1"])

    assert drawing.width == 2 * MARGIN + 2 * BOX_WIDTH + LAYER_GAP
    assert drawing.height == 2 * MARGIN + 99 * BOX_HEIGHT + 98 * ROW_GAP
    target = drawing.boxes[-1]
    assert (target.node.number, target.layer, target.row) == (100, 1, 0)
    assert target.y == (drawing.height - BOX_HEIGHT) / 2


def test_an_empty_workflow_and_a_single_step_are_drawn():
    empty = draw([], [])
    single = draw(steps(1), [])

    assert (empty.width, empty.height, empty.boxes, empty.edges) == (2 * MARGIN, 2 * MARGIN, (), ())
    assert (single.width, single.height) == (2 * MARGIN + BOX_WIDTH, 2 * MARGIN + BOX_HEIGHT)
    assert (single.boxes[0].x, single.boxes[0].y) == (MARGIN, MARGIN)


@pytest.mark.parametrize(
    "pairs",
    [((1, 1),), ((1, 2), (2, 1)), ((1, 2), (2, 3), (3, 2)), ((1, 2), (2, 3), (3, 4), (4, 2))],
    ids=["itself", "two", "after a root", "three after a root"],
)
def test_a_cycle_is_refused(pairs):
    with pytest.raises(ValueError, match="cycle"):
        draw(steps(4), edges(*pairs))


def test_an_edge_to_a_step_that_is_not_there_is_refused():
    with pytest.raises(ValueError, match="not in the workflow"):
        draw(steps(2), edges((1, 3)))


def test_a_long_result_is_cut_on_one_line_and_wide_characters_count_twice():
    long, wide = draw(
        [
            Node(1, "Add", "succeeded", "Succeeded", "1234567890 " * 10, "/computations/1/"),
            Node(2, "Add", "succeeded", "Succeeded", "结果" * 20, "/computations/2/"),
        ],
        [],
    ).boxes

    assert long.result_text.endswith("…") and len(long.result_text) <= RESULT_CHARACTERS
    assert "1234567890 1234567890" in long.result_text
    assert wide.result_text == ("结果" * 20)[: (RESULT_CHARACTERS - 1) // 2] + "…"  # the ellipsis counts one


def rendered(drawing: Drawing, **context: str) -> ET.Element:
    return ET.fromstring(render_to_string("dashboard/workflow_graph.jinja", {"drawing": drawing, **context}))


def test_the_template_draws_a_link_per_step_with_its_status_and_escapes_what_it_shows():
    nodes = [
        Node(1, "<script>alert(1)</script>", "succeeded", "Succeeded", "<b>42</b> & more " * 5, "/computations/7/"),
        Node(2, "Multiply", "failed", "Failed", "", "/computations/8/?a=1&b=2"),
        Node(3, "Add", "not_run", "Not run", "", "/computations/9/"),
    ]
    drawing = draw(nodes, [Edge(1, 2), Edge(1, 3, waits_only=True)])

    html = render_to_string("dashboard/workflow_graph.jinja", {"drawing": drawing})
    svg = ET.fromstring(html)  # well formed, so every < and & of the data was escaped

    assert "<script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert svg.tag == "svg" and svg.get("class") == "workflow-graph"
    assert svg.get("viewBox") == f"0 0 {drawing.width} {drawing.height}"
    assert svg.get("aria-hidden") == "true", "the table of the same steps is what screen readers read"
    assert svg.find("title").get("id") == "workflow-graph-title" and svg.find("desc") is not None
    links = svg.findall("a")
    assert [link.get("href") for link in links] == [node.url for node in nodes]
    assert [link.find("rect").get("class") for link in links] == [
        "step status-succeeded",
        "step status-failed",
        "step status-not_run",
    ]
    first = links[0]
    label, result = drawing.boxes[0].label_text, drawing.boxes[0].result_text
    assert label.startswith("<script>") and label.endswith("…") and result.startswith("<b>42</b> & more")
    assert [text.text for text in first.findall("text")] == [f"#1 {label}", "Succeeded", result]
    assert first.find("title").text.split("\n") == ["#1 <script>alert(1)</script>", "Succeeded", nodes[0].result]
    assert len(links[1].findall("text")) == 2  # no result, no empty line
    assert [path.get("class") for path in svg.findall("path")] == ["edge", "edge edge-wait"]
    assert all(path.get("marker-end") == "url(#workflow-graph-arrow)" for path in svg.findall("path"))
    assert svg.find("defs/marker").get("id") == "workflow-graph-arrow"


def test_the_template_takes_a_graph_id_for_a_page_with_two_graphs():
    svg = rendered(draw(steps(2), edges((1, 2))))
    other = rendered(draw(steps(1), []), graph_id="second")

    assert svg.find("title").get("id") == "workflow-graph-title"
    assert other.find("title").get("id") == "second-title" and other.find("defs/marker").get("id") == "second-arrow"
