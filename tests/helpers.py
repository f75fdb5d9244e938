import time
from collections.abc import Callable


def wait_for(condition: Callable[[], object], *, timeout: float = 20, interval: float = 0.05) -> object:
    """Polls until `condition()` is truthy and returns it; fails the test after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := condition():
            return value
        time.sleep(interval)
    raise AssertionError(f"not true within {timeout} s: {condition.__doc__ or condition}")
