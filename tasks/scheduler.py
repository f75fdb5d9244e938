"""Beat's scheduler: celery-redbeat's (the schedule and a lock in the broker's Redis, so a second beat stands by and
takes over when the first dies), made to outlast losing its lock.

redbeat's beat exits when the lock it extends at every tick is no longer its own: after Redis restarted without it,
or after the process stalled past the lock's timeout and a standby took over. This one waits to hold the lock again
instead, as a standby does, so a Redis restart needs no restart of beat and a stalled beat never sends beside
another.
"""

import logging

from redbeat import RedBeatScheduler
from redis.exceptions import LockError

logger = logging.getLogger(__name__)


class BeatScheduler(RedBeatScheduler):
    def tick(self, *args: object, **kwargs: object) -> float:
        try:
            return super().tick(*args, **kwargs)
        except LockError:
            logger.warning("beat: the lock is no longer ours; waiting to hold it again before sending anything")
            self.lock.acquire()
            logger.info("beat: Acquired lock")
            return 0
