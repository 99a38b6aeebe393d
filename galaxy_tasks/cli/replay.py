"""``galaxy-tasks replay --from ID``: hand a stream's entries on again, from ``ID`` to its end.

Safe by construction: consumers recognise entries they applied already (the
Game Master's per-game cursors, the jobs' log rows) and change and publish
nothing for them, so a replay only applies what is missing — after restoring
the database from a backup, say.  The request goes through Redis to the bridge
holding the lease, which moves its own offset (nothing else may: it would
overwrite a change made behind its back).
"""

from __future__ import annotations

import sys
import time
from typing import TextIO, cast

from galaxy_tasks.adapters.redis.client import translated_errors
from galaxy_tasks.bootstrap import resources
from galaxy_tasks.cli.status import BRIDGES
from galaxy_tasks.contract import HEALTH_EVENTS_STREAM
from galaxy_tasks.domain.stream_ids import StreamId, just_before


def replay_command(
    from_id: str, *, stream: str = HEALTH_EVENTS_STREAM, wait_seconds: float = 30.0, out: TextIO = sys.stdout
) -> int:
    keys = dict(BRIDGES).get(stream)
    if keys is None:
        print(f"galaxy-tasks replay: no bridge reads {stream!r}; streams: {', '.join(dict(BRIDGES))}", file=sys.stderr)
        return 2
    try:
        StreamId.parse(from_id)
    except ValueError as exc:
        print(f"galaxy-tasks replay: {exc} (an entry id looks like 1700000000000-0)", file=sys.stderr)
        return 2
    res = resources()
    r = res.redis
    with translated_errors(res.settings.redis_url):
        raw = res.raw_redis  # the entries' bytes are anybody's: never decode them whole
        if not raw.xrange(stream, from_id, from_id, count=1):
            oldest = cast(list[tuple[bytes, dict[bytes, bytes]]], raw.xrange(stream, "-", "+", count=1))
            where = f"its oldest entry is {oldest[0][0].decode()}" if oldest else "it is empty"
            print(f"galaxy-tasks replay: {stream} has no entry {from_id} ({where})", file=sys.stderr)
            return 2
        offset = just_before(from_id)
        r.set(keys.replay_request, offset)
        print(f"asked the {stream} bridge to hand entries on again from {from_id} (offset -> {offset})", file=out)
        deadline = time.monotonic() + wait_seconds
        while r.exists(keys.replay_request):
            if time.monotonic() > deadline:
                holder = cast(str | None, r.get(keys.lease))
                who = f"the bridge ({holder})" if holder else "no bridge (nobody holds its lease)"
                print(
                    f"galaxy-tasks replay: {who} has not taken the request within {wait_seconds:g} s; "
                    "it stays in place and the next bridge to run applies it",
                    file=sys.stderr,
                )
                return 1
            time.sleep(0.2)
    print("the bridge took it: entries already applied are recognised and skipped, the rest applied", file=out)
    return 0
