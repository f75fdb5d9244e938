"""Workflows: how long a 100-step workflow's POST takes, and how long a step waits, once the last step it depends on
has ended, before a worker starts it (the settle after that end's commit, the message, the worker taking it)."""

from __future__ import annotations

import time

from .figures import Measurements, Row, percentile_of


def hundred_steps() -> dict:
    """A chain of 99 additions (each adds 1 to the result of the one before it), then the sum of the first and the
    last: 99 hand-overs, one after the other, so that each meets an idle worker (steps side by side would measure
    their queue instead: ten ready at once on one worker process wait ten runs)."""
    steps = [{"operation": "add", "inputs": {"x": 0 if n == 1 else {"step": n - 1}, "y": 1}} for n in range(1, 100)]
    steps.append({"operation": "sum", "inputs": {"values": [{"step": 1}, {"step": 99}]}})
    return {"name": "bench: a chain of 99, summed", "steps": steps}


class WorkflowMeasurements(Measurements):
    def workflows(self, runs: int = 3) -> None:
        import requests

        from tasks.models import Computation, Workflow, WorkflowEdge

        token = self.api_token()
        posts, handovers = [], []
        for _ in range(runs):
            started = time.monotonic()
            made = requests.post(
                f"{self.url}/api/v1/workflows",
                json=hundred_steps(),
                headers={"Authorization": f"Bearer {token}"},
                timeout=60,
            )
            posts.append((time.monotonic() - started) * 1000)
            assert made.status_code == 201, made.text
            workflow = made.json()["id"]
            deadline = time.monotonic() + 300
            while not Workflow.objects.filter(pk=workflow, ended_at__isnull=False).exists():
                assert time.monotonic() < deadline, "the workflow did not end"
                time.sleep(0.2)
            steps = {row.step: row for row in Computation.objects.filter(workflow_id=workflow)}
            assert all(step.status == "succeeded" for step in steps.values()), "every step succeeds"
            sources: dict[int, list[int]] = {}
            for source, target in WorkflowEdge.objects.filter(workflow_id=workflow).values_list("source", "target"):
                sources.setdefault(target, []).append(source)
            for target, before in sources.items():
                last_end = max(steps[source].finished_at for source in before)
                handovers.append((steps[target].started_at - last_end).total_seconds() * 1000)
        post = percentile_of(posts, 50)
        self.rows.append(
            Row(
                "a 100-step workflow through the API: its POST (median of 3)",
                post,
                None,
                "ms",
                "≤ 300 ms",
                post <= 300,
                f"slowest {max(posts):.0f} ms",
            )
        )
        for name, percent, target in (("p50", 50, 50), ("p99", 99, 250)):
            value = percentile_of(handovers, percent)
            self.rows.append(
                Row(
                    f"a workflow's step: from its last predecessor's end to its start, {name}",
                    value,
                    None,
                    "ms",
                    f"≤ {target} ms",
                    value <= target,
                    f"{len(handovers)} hand-overs in {runs} workflows of 100 steps",
                )
            )
