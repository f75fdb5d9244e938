"""Reading a Chromium trace of the live page: each poll's window of the renderer's main thread, from the marks the
page leaves (browser.POLL_MARKS), and the self time of its events by phase, as DevTools' Performance panel
attributes them."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

# Names as Chromium's trace gives them (the DevTools timeline's events); a nested event's self time goes to its
# own phase, an event not named here goes to its parent's (as DevTools attributes it).
PHASES = {
    "script": {
        "FunctionCall",
        "EvaluateScript",
        "EventDispatch",
        "TimerFire",
        "XHRLoad",
        "XHRReadyStateChange",
        "FireAnimationFrame",
        "FireIdleCallback",
        "RunMicrotasks",
        "V8.Execute",
        "MajorGC",
        "MinorGC",
        "BlinkGC.AtomicPhase",
        "v8.compile",
        "v8.run",
        "v8.callFunction",
    },
    "HTML parse": {"ParseHTML"},
    "style+layout": {
        "UpdateLayoutTree",
        "Layout",
        "ParseAuthorStyleSheet",
        "ScheduleStyleRecalculation",
        "InvalidateLayout",
        "HitTest",
        "IntersectionObserverController::computeIntersections",
    },
    "paint": {"PrePaint", "Paint", "PaintImage", "Layerize", "UpdateLayerTree", "Commit", "CompositeLayers"},
}
PHASE_OF = {name: phase for phase, names in PHASES.items() for name in names}
TRACE_CATEGORIES = [
    "-*",
    "devtools.timeline",
    "disabled-by-default-devtools.timeline",
    "disabled-by-default-devtools.timeline.frame",
    "toplevel",
    "blink.user_timing",
    "v8.execute",
    "disabled-by-default-v8.gc",
]


@dataclass
class Task:
    """A top-level task of the renderer's main thread and the time of its events by phase (self times)."""

    start: float  # µs, the trace's clock
    end: float
    phases: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    renders: bool = False  # it painted a frame


def poll_windows(events: list[dict]) -> list[tuple[int, str, list[Task]]]:
    """Each traced poll of the list (its status, and the main thread's top-level tasks from its response to the
    frame after htmx's settle), from the marks POLL_MARKS leaves."""
    marks = [
        event
        for event in events
        if "blink.user_timing" in event.get("cat", "") and event.get("name", "").startswith("bench-poll ")
    ]
    if not marks:
        return []
    pid = marks[0]["pid"]
    main = next(
        event["tid"]
        for event in events
        if event.get("ph") == "M" and event["pid"] == pid and event.get("args", {}).get("name") == "CrRendererMain"
    )
    tasks = main_thread_tasks([event for event in events if event["pid"] == pid and event["tid"] == main])
    loads: dict[int, tuple[int, str, float]] = {}
    settled: dict[int, float] = {}
    for mark in marks:
        _, poll, what, *status = mark["name"].split()
        if what == "load":
            loads[int(poll)] = (int(status[0]), status[1], mark["ts"])
        else:
            settled[int(poll)] = mark["ts"]
    windows = []
    for poll, (status, kind, loaded) in sorted(loads.items()):
        if status == 200 and poll not in settled:
            continue  # the trace ended between the answer and the settle
        first = next((task for task in tasks if task.start <= loaded <= task.end), None)
        if first is None:
            continue  # answered before the trace began
        end = settled.get(poll, loaded)
        window = [task for task in tasks if first.start <= task.start <= end]
        # The frame that paints the settled list (a 304 swaps nothing: its window is the task that reads it).
        # (none when the trace ended first, or when the swap changed nothing that is drawn).
        if status == 200:
            window += [task for task in tasks if task.start > end and task.renders][:1]
        windows.append((status, kind, window))
    return windows


def main_thread_tasks(events: list[dict]) -> list[Task]:
    """The thread's top-level tasks, each with the self time of its events by phase."""
    spans = []  # (start, end, name): complete events, and begin/end pairs joined
    open_events: dict[str, list[float]] = defaultdict(list)
    for event in sorted(events, key=lambda event: event.get("ts", 0)):
        match event.get("ph"):
            case "X":
                spans.append((event["ts"], event["ts"] + event.get("dur", 0), event["name"]))
            case "B":
                open_events[event["name"]].append(event["ts"])
            case "E" if open_events[event["name"]]:
                spans.append((open_events[event["name"]].pop(), event["ts"], event["name"]))
    spans.sort(key=lambda span: (span[0], -span[1]))
    tasks: list[Task] = []
    stack: list[tuple[float, float, str, str]] = []  # (start, end, name, phase) of the open events
    children: list[float] = []  # the time of each open event's children
    for start, end, name in spans:
        while stack and start >= stack[-1][1]:
            closed = stack.pop()
            settle(tasks[-1], closed, children.pop(), children)
        if not stack:
            if name not in ("RunTask", "ThreadControllerImpl::RunTask"):
                continue  # outside any task (a mark, a trace-wide event)
            tasks.append(Task(start, end))
            phase = "other"
        else:
            phase = PHASE_OF.get(name) or ("script" if name.startswith(("V8.", "v8.")) else stack[-1][3])
        if name in PHASES["paint"]:
            tasks[-1].renders = True
        stack.append((start, end, name, phase))
        children.append(0.0)
    while stack:
        settle(tasks[-1], stack.pop(), children.pop(), children)
    return tasks


def settle(task: Task, closed: tuple[float, float, str, str], inner: float, children: list[float]) -> None:
    """Credits an event's self time to its phase, and its whole time to its parent's children."""
    start, end, _, phase = closed
    task.phases[phase] += max(0.0, end - start - inner)
    if children:
        children[-1] += end - start
