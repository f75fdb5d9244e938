"""Workflows: how long a 100-step workflow's POST takes, and how long a step waits, once the last step it depends on
has ended, before a worker starts it (the settle after that end's commit, the message, the worker taking it)."""

from __future__ import annotations

import time

from .figures import Measurements, Row, percentile_of

CHAINS, CHAIN_LENGTH = 11, 9


def hundred_steps() -> dict:
    """Eleven chains of nine additions side by side (each step adds 1 to the result of the one before it), and a
    last step that sums the chains' ends: 100 steps, 88 hand-overs along the chains and one fan-in of 11."""
    steps = []
    for chain in range(CHAINS):
        for link in range(CHAIN_LENGTH):
            number = chain * CHAIN_LENGTH + link + 1
            x = chain if link == 0 else {"step": number - 1}
            steps.append({"operation": "add", "inputs": {"x": x, "y": 1}})
    ends = [{"step": (chain + 1) * CHAIN_LENGTH} for chain in range(CHAINS)]
    steps.append({"operation": "sum", "inputs": {"values": ends}})
    return {"name": "bench: 11 chains of 9, summed", "steps": steps}


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
