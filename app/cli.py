"""`graphflags`: serve the API, apply migrations, mint development tokens."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import click

from app.settings import get_settings


@click.group()
def main() -> None:
    """graphflags: feature flags for organisation hierarchies."""


@main.command()
@click.option("--host", default=None, help="Listen address (GRAPHFLAGS_HOST).")
@click.option("--port", type=int, default=None, help="Listen port (GRAPHFLAGS_PORT).")
@click.option("--workers", type=int, default=None, help="Worker processes (GRAPHFLAGS_WORKERS).")
@click.option(
    "--upstream",
    default=None,
    metavar="URL",
    help="Serve as a read-only region of this upstream (GRAPHFLAGS_UPSTREAM_URL; docs/regions.md).",
)
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
            timeout_keep_alive=settings.keep_alive_timeout,
            # HTTPS only when a certificate is configured (docs/security.md); no plain listener then.
            ssl_certfile=str(settings.tls_cert_file) if settings.tls_cert_file else None,
            ssl_keyfile=str(settings.tls_key_file) if settings.tls_key_file else None,
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


@main.command("dev-cert")
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path(".local/tls"),
    show_default=True,
    help="Folder for cert.pem and key.pem (mode 600).",
)
@click.option("--days", type=click.IntRange(1, 3650), default=365, show_default=True)
def dev_cert(out: Path, days: int) -> None:
    """Write a self-signed certificate for localhost/127.0.0.1, for HTTPS in development."""
    from app.tls import write_dev_cert

    cert, key = write_dev_cert(out, days=days)
    click.echo(f"GRAPHFLAGS_TLS_CERT_FILE={cert}")
    click.echo(f"GRAPHFLAGS_TLS_KEY_FILE={key}")


@main.command(
    "neo4j", context_settings={"ignore_unknown_options": True, "allow_extra_args": True, "help_option_names": []}
)
@click.pass_context
def neo4j(ctx: click.Context) -> None:
    """A local Neo4j without Docker: assemble|init|start|stop|status|admin|password (neo4j/neo4jctl)."""
    from app.neo4j_server.cli import main as neo4j_main

    ctx.exit(neo4j_main(ctx.args))


@main.command("backup-key")
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="New file (mode 600) for GRAPHFLAGS_BACKUP_KEY_FILE; an existing one is never overwritten.",
)
def backup_key(out: Path) -> None:
    """Generate a backup encryption key into a file (keep a copy away from the backups)."""
    import os

    from loaders.crypto import new_key

    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise click.ClickException(f"{out} exists; a backup key is never overwritten") from None
    with os.fdopen(fd, "w") as handle:
        handle.write(new_key() + "\n")
    click.echo(f"GRAPHFLAGS_BACKUP_KEY_FILE={out}")


def _register_loaders() -> None:
    # import / backup / restore: thin commands over loaders/, defined in loaders/cli.py.
    from loaders.cli import backup, import_command, restore

    for command in (import_command, backup, restore):
        main.add_command(command)


_register_loaders()


if __name__ == "__main__":
    main()
