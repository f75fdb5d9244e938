"""Workflows: computations that feed each other, as rows. plan.py checks one as submitted, recording.py records it,
settling.py moves it on as its steps end (tasks.models.workflow holds its rows)."""
