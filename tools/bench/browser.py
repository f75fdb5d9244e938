"""The live page in a browser while work runs: what one changed poll costs the main thread (from a Chromium trace),
the blocking time of a phone loading the dashboard and watching it poll, and Lighthouse's performance score of the
dashboard, a batch's page and a computation's page. `python -m tools.bench browser` measures these alone."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .figures import OUTPUT, Measurements, Row
from .trace import PHASES, TRACE_CATEGORIES, Task, poll_windows

# Lighthouse 12.8.2, the last release that runs on Node 20 (13 needs Node 22), installed by `tools/setup --bench`
# (npm ci, from package-lock.json beside this file).
LIGHTHOUSE = Path(__file__).parent / "node_modules" / ".bin" / "lighthouse"
CHROMIUM = "/usr/bin/chromium"
CHROME_FLAGS = "--headless=new --no-sandbox --disable-gpu"
# Each computation of the batch works this long, reporting progress every 0.2 s (written every 0.25 s): the list
# changes before every 1 s poll, so each poll is a changed 200, as while real work runs.
WORK_SECONDS = 20
BATCH_SIZE = 30  # ten minutes of work on the heavy worker's one process: more than all of this takes
CHANGED_POLLS = 10
# The changed polls' trace, to open in DevTools' Performance panel (overwritten each run).
TRACE = OUTPUT / "changed-polls.trace.json"
LONG_TASK_MS = 50
# A mark when the list's poll answers and when htmx has settled its swap, in the trace's clock (User Timing marks
# are trace events): the window of one poll. Init scripts run outside the page's Content-Security-Policy.
POLL_MARKS = """
(() => {
  const polls = new WeakMap();
  let count = 0;
  window.benchSettled = 0;
  document.addEventListener("htmx:beforeOnLoad", (event) => {
    const {elt, xhr} = event.detail;
    if (elt.id !== "computation-list") return;
    polls.set(xhr, ++count);
    // "moving": the answer brought only the moving rows (HX-Reswap: none), "whole" the whole list.
    const kind = xhr.getResponseHeader("HX-Reswap") === "none" ? "moving" : "whole";
    performance.mark(`bench-poll ${count} load ${xhr.status} ${kind}`);
  });
  document.addEventListener("htmx:afterSettle", (event) => {
    const poll = polls.get(event.detail.xhr);
    if (poll === undefined) return;
    polls.delete(event.detail.xhr);
    performance.mark(`bench-poll ${poll} settled`);
    window.benchSettled++;
  });
})();
"""
LONG_TASKS = (
    "window.longTasks = [];"
    "new PerformanceObserver(list => window.longTasks.push(...list.getEntries().map(e => e.duration)))"
    ".observe({type: 'longtask', buffered: true});"
)
PHONE = {"viewport": {"width": 412, "height": 823}, "device_scale_factor": 1.75, "is_mobile": True, "has_touch": True}


class BrowserMeasurements(Measurements):
    @contextmanager
    def work_in_flight(self) -> Iterator[int]:
        """A batch of counts of primes, each WORK_SECONDS of work reporting progress (the heavy worker runs one at a
        time, the rest wait), and one count of primes of its own waiting behind them, the newest row of the list:
        the dashboard polls, and the batch's progress and that row's waiting time change every second. Yields the
        batch's id; what is still in flight is cancelled after."""
        from tasks import services
        from tasks.models import Computation, Status
        from tasks.operations import REGISTRY

        batch = services.submit_batch(
            operation=REGISTRY["count_primes"],
            varied="n",
            start=1000,
            stop=1000 * BATCH_SIZE,
            step=1000,
            fixed={},
            work_seconds=WORK_SECONDS,
        )
        services.submit(operation=REGISTRY["count_primes"], inputs={"n": 1000}, work_seconds=WORK_SECONDS)
        try:
            deadline = time.monotonic() + 60
            while not Computation.objects.filter(batch=batch, status=Status.RUNNING).exists():
                assert time.monotonic() < deadline, "the batch's first computation did not start within a minute"
                time.sleep(0.2)
            yield batch.pk
        finally:
            Computation.objects.in_flight().cancel()

    def live_pages(self) -> None:
        """The three browser measurements, on one batch of work (the table must hold a full first page)."""
        from tasks.models import Computation, Status

        with self.work_in_flight() as batch:
            print("     main-thread time of changed polls (trace)", flush=True)
            self.changed_poll_time()
            print("     blocking time while the dashboard polls", flush=True)
            self.blocking_time_in_flight()
            for name, path in (("GET /", "/"), ("a batch's page", f"/batches/{batch}/")):
                print(f"     Lighthouse: {name}", flush=True)
                self.lighthouse(name, path)
            print("     Lighthouse: a computation's page", flush=True)
            # The one running now, whose section polls and changes while Lighthouse loads it.
            members = Computation.objects.filter(batch=batch).order_by("pk")
            computation = members.filter(status=Status.RUNNING).first() or members.first()
            self.lighthouse("a computation's page", f"/computations/{computation.pk}/")

    def changed_poll_time(self, polls: int = CHANGED_POLLS) -> None:
        """The main thread's time for each changed poll of the list, from Chromium's own trace: every top-level task
        from the one that takes the poll's response to the one in which htmx settles the swap, and the frame that
        paints the settled list after it. A desktop window, the CPU slowed four times."""
        from playwright.sync_api import sync_playwright

        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
            page = browser.new_context(viewport={"width": 1280, "height": 800}).new_page()
            page.context.new_cdp_session(page).send("Emulation.setCPUThrottlingRate", {"rate": 4})
            page.add_init_script(POLL_MARKS)
            page.goto(f"{self.url}/", wait_until="load")
            page.wait_for_timeout(3000)  # past the load and its first polls
            settled = page.evaluate("window.benchSettled")
            browser.start_tracing(page=page, categories=TRACE_CATEGORIES)
            # One more than asked for: the first may have been answered before the trace began. Checked once a
            # second, which costs the main thread next to nothing (wait_for_function's string is refused by the
            # page's Content-Security-Policy).
            deadline = time.monotonic() + 60
            while page.evaluate("window.benchSettled") <= settled + polls and time.monotonic() < deadline:
                page.wait_for_timeout(1000)
            page.wait_for_timeout(500)  # the frame after the last settle
            raw = browser.stop_tracing()
            browser.close()
        TRACE.write_bytes(raw)
        trace = json.loads(raw)
        windows = poll_windows(trace["traceEvents"] if isinstance(trace, dict) else trace)
        changed = [window for status, _, window in windows if status == 200]
        whole = [window for status, kind, window in windows if status == 200 and kind == "whole"]
        assert len(changed) >= polls // 2, f"{len(changed)} changed polls traced ({len(windows)} polls)"
        totals = [sum(task.end - task.start for task in window) / 1000 for window in changed]
        by_phase = {
            phase: statistics.median(sum(task.phases.get(phase, 0.0) for task in window) / 1000 for window in changed)
            for phase in [*PHASES, "other"]
        }
        median = statistics.median(totals)
        breakdown = ", ".join(f"{phase} {ms:.1f}" for phase, ms in by_phase.items())
        self.rows.append(
            Row(
                f"main-thread time of one changed poll (4× slowdown), median of {len(changed)}",
                median,
                None,
                "ms",
                "≤ 50 ms",
                median <= LONG_TASK_MS,
                f"medians in ms: {breakdown}; longest poll {max(totals):.0f} ms; {whole_text(whole)};"
                f" {len(windows) - len(changed)} of {len(windows)} polls unchanged (304); 1280×800; trace in"
                f" var/bench/{TRACE.name}",
            )
        )

    def blocking_time_in_flight(self, loads: int = 3, watch_seconds: int = 10) -> None:
        """Lighthouse's mobile profile (a phone's viewport, the CPU slowed four times) loading the dashboard while
        work runs, then watching it poll: every long task counted past its first 50 ms, as total blocking time is."""
        from playwright.sync_api import sync_playwright

        totals, longest, counted = [], 0.0, 0
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
            for _ in range(loads):
                context = browser.new_context(**PHONE)
                page = context.new_page()
                context.new_cdp_session(page).send("Emulation.setCPUThrottlingRate", {"rate": 4})
                page.add_init_script(LONG_TASKS)
                page.goto(f"{self.url}/", wait_until="load")
                page.wait_for_timeout(watch_seconds * 1000)
                durations = page.evaluate("window.longTasks")
                totals.append(sum(max(0.0, duration - LONG_TASK_MS) for duration in durations))
                longest, counted = max([longest, *durations]), counted + len(durations)
                context.close()
            browser.close()
        blocking = statistics.median(totals)
        self.rows.append(
            Row(
                f"total blocking time with work in flight (GET / and {watch_seconds} s of polling), median of {loads}",
                blocking,
                None,
                "ms",
                "< 200 ms",
                blocking < 200,
                f"{counted / loads:.1f} long tasks a load, longest {longest:.0f} ms; phone viewport, 4× slowdown",
            )
        )

    def lighthouse(self, name: str, path: str) -> None:
        """Lighthouse's mobile performance score (its default: a phone, the CPU slowed four times and a slow 4G
        network, simulated), headless against Debian's Chromium."""
        from django.conf import settings

        if not LIGHTHOUSE.exists():
            raise SystemExit(f"{LIGHTHOUSE} is missing: run tools/setup --bench")
        command = [
            str(LIGHTHOUSE),
            f"{self.url}{path}",
            "--only-categories=performance",
            "--output=json",
            "--output-path=stdout",
            "--quiet",
            f"--chrome-flags={CHROME_FLAGS}",
        ]
        output = subprocess.run(
            command, capture_output=True, text=True, check=True, env={**os.environ, "CHROME_PATH": CHROMIUM}
        ).stdout
        report = json.loads(output)
        score = report["categories"]["performance"]["score"]
        audits = report["audits"]
        tbt, lcp = (audits[key]["numericValue"] for key in ("total-blocking-time", "largest-contentful-paint"))
        signed_in = "a signed-in person" if settings.DASHBOARD_LOGIN_REQUIRED else "no sign-in (accounts off)"
        warned = report["runWarnings"]
        warnings = f"; {len(warned)} warnings, the first: {warned[0][:100]}" if warned else ""
        self.rows.append(
            Row(
                f"Lighthouse {report['lighthouseVersion']} mobile performance score, {name} (work in flight)",
                score or 0.0,
                None,
                "score",
                "≥ 0.95",
                score is not None and score >= 0.95,
                f"TBT {tbt:.0f} ms, LCP {lcp / 1000:.2f} s; {signed_in}{warnings}",
            )
        )


def whole_text(whole: list[list[Task]]) -> str:
    """How many changed polls brought the whole list (its shape changed: a status, a row, a count) rather than
    only the moving rows, and what they cost."""
    if not whole:
        return "every changed poll brought only the moving rows"
    times = [sum(task.end - task.start for task in window) / 1000 for window in whole]
    return f"{len(whole)} brought the whole list (a new shape), median {statistics.median(times):.0f} ms"
