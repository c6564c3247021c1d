"""``lendo-api copy-store``: a user who outgrows SQLite keeps every application and key."""

import json
import os
import subprocess
import uuid
from datetime import timedelta
from pathlib import Path

from lendo_api.postgres_store import PostgresStore
from lendo_api.sqlite_store import SqliteStore
from lendo_api.store import ApplicationStore, IdempotencyKey, StatusChange
from lendo_api.timestamps import now
from lendo_local.processes import console_script

HOUR = timedelta(hours=1)


def copy(source: Path, target: str) -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("LENDO_")}
    return subprocess.run(
        [console_script("lendo-api"), "copy-store", "--to", target, "--batch", "4"],
        env={**env, "LENDO_DB_PATH": str(source)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


async def everything(store: ApplicationStore) -> list[str]:
    """Every application's JSON, in creation order."""
    items: list[str] = []
    after: int | None = None
    while True:
        page = await store.list_page_json(status=None, limit=3, after=after)
        items += page.items
        if page.next_after is None:
            return items
        after = page.next_after


async def test_every_application_and_key_reads_the_same_after_the_copy_and_a_rerun(
    tmp_path: Path, database_url: str
) -> None:
    source = tmp_path / "lendo.sqlite3"
    sqlite = await SqliteStore.open(source)
    created = [
        await sqlite.create(id=uuid.uuid4(), first_name=f"Åsa {n}", last_name="Ö", request_id=None)
        for n in range(9)
    ]
    keyed = await sqlite.create_once(
        key=IdempotencyKey("client-a", "order-42", "h-1"),
        id=uuid.uuid4(),
        first_name="Ada",
        last_name="Lovelace",
        request_id=None,
        keep_for=HOUR,
    )
    await sqlite.apply_updates([StatusChange(created[2].id, "completed", now())])
    await sqlite.mark_published([created[0].id])
    before = await everything(sqlite)

    first = copy(source, database_url)
    # The API went on with the file: a later decision, and a newer application.
    await sqlite.apply_updates([StatusChange(created[5].id, "rejected", now())])
    newer = await sqlite.create(id=uuid.uuid4(), first_name="Grace", last_name="H", request_id=None)
    after = await everything(sqlite)
    await sqlite.close()
    again = copy(source, database_url)

    assert first.returncode == 0, first.stderr
    assert again.returncode == 0, again.stderr
    assert "copied 11 applications and 1 idempotency keys" in again.stdout
    postgres = await PostgresStore.open(database_url, min_size=1, max_size=2, claim_for=HOUR)
    try:
        assert await everything(postgres) == after
        assert len(before) == len(after) - 1
        assert json.loads(after[-1])["id"] == str(newer.id)
        assert json.loads(after[5])["status"] == "rejected"
        replay = await postgres.create_once(
            key=IdempotencyKey("client-a", "order-42", "h-1"),
            id=uuid.uuid4(),
            first_name="Ada",
            last_name="Lovelace",
            request_id=None,
            keep_for=HOUR,
        )
        due = await postgres.due_for_publish(older_than=HOUR, limit=100)
    finally:
        await postgres.close()
    assert not replay.created
    assert replay.application.id == keyed.application.id
    assert created[0].id not in {application.id for application in due}


def test_a_missing_file_fails_with_one_line(tmp_path: Path, database_url: str) -> None:
    result = copy(tmp_path / "none.sqlite3", database_url)

    assert result.returncode == 1
    [line] = result.stderr.splitlines()
    assert "none.sqlite3" in line
    assert not (tmp_path / "none.sqlite3").exists()
