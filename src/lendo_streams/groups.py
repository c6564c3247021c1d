"""Consumer-group helpers shared by both processes."""

from redis.asyncio import Redis
from redis.exceptions import ResponseError


async def ensure_group(redis: "Redis", stream: str, group: str) -> None:
    """Create ``group`` on ``stream`` (and the stream itself) unless it exists.

    Idempotent, so every process calls it at start and again after Redis
    answers NOGROUP (Redis restarted empty).
    """
    try:
        await redis.xgroup_create(stream, group, id="0", mkstream=True)
    except ResponseError as error:
        if not str(error).startswith("BUSYGROUP"):
            raise


def is_nogroup(error: ResponseError) -> bool:
    """True if Redis lost the stream or group (e.g. it restarted without data)."""
    return str(error).startswith("NOGROUP")
