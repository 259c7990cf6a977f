"""`graphflags`: serve the API, apply migrations, mint development tokens."""

from __future__ import annotations

import asyncio
import contextlib

import click

from app.settings import get_settings


@click.group()
def main() -> None:
    """graphflags: feature flags for organisation hierarchies."""


@main.command()
@click.option("--host", default=None, help="Listen address (GRAPHFLAGS_HOST).")
@click.option("--port", type=int, default=None, help="Listen port (GRAPHFLAGS_PORT).")
@click.option("--workers", type=int, default=None, help="Worker processes (GRAPHFLAGS_WORKERS).")
@click.option("--upstream", default=None, metavar="URL",
              help="Serve as a read-only region of this upstream (GRAPHFLAGS_UPSTREAM_URL; docs/regions.md).")
def serve(host: str | None, port: int | None, workers: int | None, upstream: str | None) -> None:
    """Apply migrations once, then serve the API with uvicorn."""
    import os

    import uvicorn

    from app.observability import metrics

    if upstream:
        # Through the environment, so the worker processes see it too.
        os.environ["GRAPHFLAGS_UPSTREAM_URL"] = upstream
        get_settings.cache_clear()
    settings = get_settings()
    asyncio.run(_migrate())
    if settings.upstream_url:
        from app.region import runner

        runner.start(settings)
    # Every run gets its own metrics directory, so a scrape adds up all workers' values
    # (and none of a previous run's); the workers inherit it through the environment.
    with metrics.multiprocess_dir() if settings.metrics else contextlib.nullcontext():
        if settings.metrics and settings.metrics_port is not None:
            # Served by this supervisor process, which outlives any worker: no token, so
            # bind it where only Prometheus reaches (loopback by default).
            metrics.serve_listener(settings.metrics_host, settings.metrics_port)
        uvicorn.run(
            "app.asgi:app",
            host=host or settings.host,
            port=port or settings.port,
            workers=workers or settings.workers,
            access_log=False,  # requests are counted and traced, not logged one by one
            log_level="warning",
            proxy_headers=False,
        )


@main.command()
def migrate() -> None:
    """Apply the schema migrations in cypher/migrations/ that have not run yet."""
    ran = asyncio.run(_migrate())
    click.echo(f"applied: {', '.join(ran)}" if ran else "schema up to date")


async def _migrate() -> list[str]:
    from app.store.database import Database
    from app.store.migrations import apply_migrations

    db = Database(get_settings())
    try:
        return await apply_migrations(db)
    finally:
        await db.close()


@main.command()
@click.option("--sub", required=True, help="The actor the token names.")
@click.option("--role", "roles", multiple=True, required=True, type=click.Choice(["reader", "writer", "admin"]))
@click.option("--org", "orgs", multiple=True, required=True, help="Subtree root the token may act on; '*' for all.")
@click.option("--ttl", type=int, default=3600, show_default=True, help="Lifetime in seconds.")
def token(sub: str, roles: tuple[str, ...], orgs: tuple[str, ...], ttl: int) -> None:
    """Print a token signed with the local development key."""
    from app.auth.tokens import mint_dev_token

    click.echo(mint_dev_token(get_settings(), subject=sub, roles=list(roles), orgs=list(orgs), ttl=ttl))


def _register_loaders() -> None:
    # import / backup / restore: thin commands over loaders/, defined in loaders/cli.py.
    from loaders.cli import backup, import_command, restore

    for command in (import_command, backup, restore):
        main.add_command(command)


_register_loaders()


if __name__ == "__main__":
    main()
