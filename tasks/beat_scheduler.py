"""Beat's scheduler: celery-redbeat's (the schedule and a lock in the broker's Redis, so a second beat stands by and
takes over when the first dies), made to outlast Redis going away and losing its lock.

redbeat's beat exits when Redis cannot be reached at a tick (the lock is extended through a client that does not
retry), and when the lock is no longer its own: after Redis restarted without it, or after the process stalled
past the lock's timeout and a standby took over. This one sends nothing while Redis is away and tries again every
REDIS_RETRY_SECONDS; a lost lock it waits to hold again, as a standby does. So an outage of Redis needs no restart
of beat, and a stalled beat never sends beside another.
"""

import logging
import time

from redbeat import RedBeatScheduler
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import LockError
from redis.exceptions import TimeoutError as RedisTimeoutError

logger = logging.getLogger(__name__)

REDIS_RETRY_SECONDS = 1.0
UNREACHABLE = (RedisConnectionError, RedisTimeoutError)


class BeatScheduler(RedBeatScheduler):
    def tick(self, *args: object, **kwargs: object) -> float:
        try:
            return super().tick(*args, **kwargs)
        except UNREACHABLE as error:
            logger.warning("beat: Redis cannot be reached (%s); sending nothing until it is back", error)
            return REDIS_RETRY_SECONDS
        except LockError:
            logger.warning("beat: the lock is no longer ours; waiting to hold it again before sending anything")
            self._hold_lock()
            return 0

    def _hold_lock(self) -> None:
        while True:
            try:
                self.lock.acquire()  # blocks, trying every beat_max_loop_interval
            except UNREACHABLE as error:
                logger.warning("beat: Redis cannot be reached (%s) while waiting for the lock", error)
                time.sleep(REDIS_RETRY_SECONDS)
            else:
                logger.info("beat: Acquired lock")
                return
