"""``lendo-dead-letters``: list the dead-letter stream, or replay entries from it.

Reads ``LENDO_REDIS_URL`` and ``LENDO_STREAM_PREFIX`` like the other processes.

    lendo-dead-letters list [--data]      one JSON object per dead letter, oldest first
    lendo-dead-letters replay ID [ID...]  put these back on their source streams
    lendo-dead-letters replay --all       put every dead letter back

``list`` leaves out the original entry (it holds applicants' names) unless
``--data`` asks for it.
"""

import argparse
import asyncio
import json
from collections.abc import Sequence

from redis.asyncio import Redis

from lendo_runtime.settings import load_settings
from lendo_streams.dead_letters import dead_letters, replay
from lendo_streams.settings import RedisSettings

PROGRAM = "lendo-dead-letters"


def main(argv: Sequence[str] | None = None) -> None:
    arguments = _parser().parse_args(argv)
    settings = load_settings(RedisSettings, PROGRAM)
    asyncio.run(_run(settings, arguments))


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROGRAM, description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    listing = commands.add_parser("list", help="Print every dead letter as one JSON line.")
    listing.add_argument(
        "--data", action="store_true", help="Include the original entry (holds names)."
    )
    replaying = commands.add_parser("replay", help="Put dead letters back on their streams.")
    which = replaying.add_mutually_exclusive_group(required=True)
    which.add_argument("ids", nargs="*", default=[], help="Dead-letter ids, as `list` shows.")
    which.add_argument("--all", action="store_true", help="Replay every dead letter.")
    return parser


async def _run(settings: RedisSettings, arguments: argparse.Namespace) -> None:
    redis = Redis.from_url(str(settings.redis_url))
    try:
        if arguments.command == "list":
            for letter in await dead_letters(redis, settings.streams):
                line: dict[str, object] = {
                    "id": letter.id,
                    "reason": letter.reason,
                    "source_stream": letter.source_stream,
                    "source_id": letter.source_id,
                }
                if arguments.data:
                    line["original"] = {
                        name.decode(errors="replace"): value.decode(errors="replace")
                        for name, value in letter.original.items()
                    }
                print(json.dumps(line))
        else:
            replayed = await replay(
                redis, settings.streams, None if arguments.all else arguments.ids
            )
            print(f"replayed {replayed}")
    finally:
        await redis.aclose()


if __name__ == "__main__":
    main()
