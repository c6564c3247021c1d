"""The store the settings choose: PostgreSQL when ``LENDO_DATABASE_URL`` is set, else SQLite."""

from datetime import timedelta

from lendo_api.postgres_store import PostgresStore
from lendo_api.settings import ApiSettings
from lendo_api.sqlite_store import SqliteStore
from lendo_api.store import ApplicationStore


async def open_store(settings: ApiSettings) -> ApplicationStore:
    """Open the chosen store, its schema migrated to the newest version."""
    if settings.database_url is None:
        return await SqliteStore.open(settings.db_path)
    return await PostgresStore.open(
        settings.database_url.get_secret_value(),
        min_size=settings.db_pool_min_size,
        max_size=settings.db_pool_max_size,
        claim_for=timedelta(seconds=settings.publish_claim),
    )
