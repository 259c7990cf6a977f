"""Every setting graphflags reads, in one place, from the environment first.

Variables are prefixed `GRAPHFLAGS_`, except the Neo4j connection, which uses the
names the Neo4j tools already use (`NEO4J_URI`, `NEO4J_USER`, `NEO4J_PASSWORD`).
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

from pydantic import AliasChoices, Field, HttpUrl, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# Where `make run` keeps what it generates (dev key, local Neo4j): ignored by git.
LOCAL_DIR = Path(".local")


def usable_cpus() -> int:
    """The CPUs this process may run on (its affinity mask, as taskset or a cpuset sets it)."""
    # os.process_cpu_count() says the same from Python 3.13; sched_getaffinity is Linux-only.
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="GRAPHFLAGS_", extra="ignore")

    host: str = "127.0.0.1"
    port: int = 8080
    # One uvicorn worker per usable CPU: a worker is one Python process, so one core at most.
    workers: int = Field(default_factory=usable_cpus)
    # Seconds an idle keep-alive connection stays open. Longer than the idle timeout of any load
    # balancer or client pool in front (60 s is common): the side that closes first must be the
    # client, or a request sent as the server closes is lost (uvicorn's own default is 5 s).
    keep_alive_timeout: int = Field(75, ge=1)

    flags_file: Path = Path("flags.json")
    # Pick up edits to flags_file without a restart.
    watch_catalog: bool = True

    neo4j_uri: str = Field("bolt://127.0.0.1:7687", validation_alias=AliasChoices("NEO4J_URI", "GRAPHFLAGS_NEO4J_URI"))
    neo4j_user: str = Field("neo4j", validation_alias=AliasChoices("NEO4J_USER", "GRAPHFLAGS_NEO4J_USER"))
    neo4j_password: SecretStr | None = Field(
        None, validation_alias=AliasChoices("NEO4J_PASSWORD", "GRAPHFLAGS_NEO4J_PASSWORD")
    )
    # Used when NEO4J_PASSWORD is unset: the file `neo4j/neo4jctl init` generates.
    neo4j_password_file: Path = LOCAL_DIR / "neo4j" / "home" / "password"
    neo4j_database: str = Field("neo4j", validation_alias=AliasChoices("NEO4J_DATABASE", "GRAPHFLAGS_NEO4J_DATABASE"))
    neo4j_pool_size: int = 100
    # Seconds a single query may run before the server aborts it.
    query_timeout: float = 10.0
    # Seconds to open a connection, and to keep retrying a transaction on transient failures.
    connect_timeout: float = 3.0
    retry_time: float = 3.0
    # Circuit breaker: outages in a row that open it, and seconds it stays open.
    breaker_threshold: int = 3
    breaker_reset: float = 5.0
    # With the database away, cached values keep being served (marked stale) for this long.
    serve_stale_for: float = 3600.0
    # Write transactions in flight per worker, and seconds a write may wait for its turn before
    # it is refused with 503 (writes are serialised in the database: more in flight would only
    # queue there, holding pooled connections that lookups need).
    write_concurrency: int = Field(4, ge=1)
    write_queue_timeout: float = Field(1.0, gt=0)
    # Value writes waiting in a worker are committed together, up to this many per transaction
    # (group commit, app/services/group_commit.py); write_queue_timeout bounds the wait for a place in one.
    write_batch_max: int = Field(256, ge=1)
    # The same for reads that reach the database (cache misses, audit, orgs); the change feed
    # is exempt. Keep read_concurrency below neo4j_pool_size.
    read_concurrency: int = Field(32, ge=1)
    read_queue_timeout: float = Field(0.5, gt=0)
    # Cache misses are read in batches (app/cache/batched_reads.py): at most this many lookups per
    # statement, and this many statements in flight per worker. On a 10M-org graph batches of 25-50
    # at 4-8 statements in flight (both workers together) gave the most orgs/s (DESIGN.md).
    read_batch_size: int = Field(64, ge=1)
    read_batches_in_flight: int = Field(4, ge=1)

    # JWT: HS256 with a local development key unless a JWKS (RS256/ES256) is configured.
    jwt_issuer: str = "graphflags-dev"
    jwt_audience: str = "graphflags"
    jwt_jwks_file: Path | None = None
    # Or keys from a URL, as identity providers publish them (app/auth/tokens.py): fetched when
    # first needed and again when a token names an unknown `kid`, at most once per refetch
    # interval (seconds), so a provider can rotate keys without a restart here.
    jwt_jwks_url: str | None = Field(
        None, validation_alias=AliasChoices("GRAPHFLAGS_JWKS_URL", "GRAPHFLAGS_JWT_JWKS_URL")
    )
    jwt_jwks_refetch_interval: float = Field(5.0, ge=0.0)
    jwt_jwks_fetch_timeout: float = Field(3.0, gt=0.0)
    jwt_dev_key_file: Path = LOCAL_DIR / "dev-jwt.key"

    # Request bodies larger than this are refused with 413 (bulk loads included).
    max_body_bytes: int = 64 * 1024 * 1024
    # Levels an org may sit below its root (a root is depth 0): deeper creates and moves are
    # refused with 422 too-deep. At most 1,000, the bound of cypher/org_subtree_reaches.cypher.
    max_depth: int = Field(64, ge=1, le=1000)
    # Rows written per UNWIND statement in bulk loads.
    bulk_batch_size: int = 5_000
    # A dry run (?dry_run=true) stops counting the orgs a change reaches here ("exact": false past it).
    dry_run_max: int = Field(1_000_000, ge=1)
    # Seconds a dry run's count may take (a request's query_timeout is for lookups, not for
    # walking a million orgs).
    dry_run_timeout: float = Field(60.0, gt=0)
    # Seconds the one transaction of a bulk value write (PUT /v1/flags/{flag}/values) may run:
    # judging and writing 100,000 rows takes seconds, far above a request's query_timeout.
    bulk_values_timeout: float = Field(120.0, gt=0)
    # How often each instance looks for scheduled changes that are due (applied within a
    # second of their time needs well under a second here).
    schedule_poll_interval: float = Field(0.25, gt=0)
    # Finished schedules (applied, failed, cancelled) are kept this many days after they
    # finished, then deleted by the scheduler every schedule_prune_interval seconds. What an
    # applied one changed stays in the audit log (audit_retention_days).
    schedule_retention_days: int = Field(30, ge=1)
    schedule_prune_interval: float = Field(3600.0, gt=0)

    # The in-process cache (app/cache/values.py): entries per kind, how often the change
    # feed is read, and how long the cache may go unconfirmed by it before it stops answering.
    cache_max_entries: int = 1_000_000
    cache_follow_interval: float = 0.25
    cache_max_lag: float = 2.0

    # The garbage collector (app/gc_policy.py): no automatic full passes, what the process holds
    # frozen every gc_freeze_interval seconds, and one full pass (thawed and collected) every
    # gc_thaw_interval seconds, which reclaims the garbage cycles left meanwhile. 0 turns the
    # policy off: the collector's own full passes then walk every open stream's objects.
    gc_freeze_interval: float = Field(60.0, ge=0)
    gc_thaw_interval: float = Field(900.0, gt=0)

    # Audit events (the change feed) are kept this many days (at least 7, the contract's
    # promise), then pruned every audit_prune_interval seconds.
    audit_retention_days: int = Field(30, ge=7)
    audit_prune_interval: float = Field(3600.0, gt=0)

    log_level: str = "INFO"
    log_json: bool = True

    # Observability (app/observability/). Metrics: request, Cypher, cache and change counts,
    # served at GET /metrics (admin token) and, when metrics_port is set, on a separate
    # unauthenticated listener in the `serve` supervisor process for Prometheus to scrape.
    metrics: bool = True
    metrics_host: str = "127.0.0.1"
    metrics_port: int | None = None
    # Traces go to this OTLP/HTTP collector (e.g. http://127.0.0.1:4318); unset: no tracer at all.
    otlp_endpoint: str | None = Field(
        None, validation_alias=AliasChoices("GRAPHFLAGS_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")
    )
    # Share of requests traced in full (a caller's sampled traceparent is always followed).
    # A traced request costs about 50 us more CPU, more than a whole cached lookup: at 1%
    # that averages about 1.4 us a request, at 10% about 6 us (bench/RESULTS.md).
    trace_sample_ratio: float = Field(0.01, ge=0.0, le=1.0)

    # Rate limits (app/http/rate_limits.py), per token `sub` and per tenant (each org id in
    # the token's `orgs`; '*' is one tenant), e.g. "10000/second" or "100/second;5000/minute";
    # empty: off. Counted per worker process. The JSON file, when set, overrides them and
    # is re-read (checked every rate_limits_reload_interval seconds) without a restart.
    rate_limit_token: str = ""
    rate_limit_tenant: str = ""
    rate_limits_file: Path | None = None
    rate_limits_reload_interval: float = Field(1.0, ge=0.0)
    # Server-Sent Events streams one token may hold open at once (per worker process); more
    # get 429. Every stream also ends when its token expires (app/http/streams.py).
    max_streams_per_token: int = Field(4, ge=1)
    # OpenFeature event streams (docs/api.md): the URL a bulk evaluation hands out carries its
    # own HS256 credential, signed with this key. Every instance behind one address needs the
    # same key (set it, as a secret); unset, a key generated into stream_key_file serves the
    # workers of one machine. The URL opens a stream for between stream_url_lifetime and twice
    # that (never past the caller's token); the stream itself ends at the caller's expiry.
    stream_key: SecretStr | None = None
    stream_key_file: Path = LOCAL_DIR / "stream-url.key"
    stream_url_lifetime: int = Field(300, ge=10)
    # What eventStreams tells clients to wait, once hidden or idle, before closing the stream.
    stream_inactivity_delay: int = Field(120, ge=1)
    # Seconds between the `: keep-alive` comments every open event stream sends, so that
    # proxies and load balancers do not cut idle streams (one timer per process for all).
    stream_heartbeat_seconds: float = Field(15.0, gt=0)
    # Where eventStreams URLs point: unset, the address the bulk evaluation came in on. Set, the
    # base URL of instances kept for streams (the same service, the same stream key), so that a
    # fan-out to thousands of streams runs on processes that answer no lookups (docs/operations.md).
    stream_base_url: HttpUrl | None = None

    # Regions (docs/regions.md): with an upstream URL this instance keeps a local copy of the
    # upstream's orgs and values in its own Neo4j, follows its change feed, and refuses writes.
    # The token is a service token (admin on '*') for GET /v1/snapshot and /v1/changes.
    upstream_url: str | None = None
    upstream_token: SecretStr | None = None
    # Longest wait between reconnection attempts (exponential backoff with jitter up to it).
    upstream_backoff_max: float = Field(5.0, gt=0)
    # Seconds without a byte from the upstream's stream before it is presumed gone; above the
    # feed's 15 s heartbeat.
    upstream_read_timeout: float = Field(30.0, gt=0)
    # How often the follower records that it is connected and caught up (the staleness clock).
    region_confirm_interval: float = Field(1.0, gt=0)

    # Encryption (docs/security.md). HTTPS: both files set -> `serve` speaks TLS only
    # (`graphflags dev-cert` writes a local pair). Bolt: with a trusted CA file the driver
    # encrypts and checks the server's certificate against it (use a bolt:// or neo4j://
    # URI then; bolt+s:// trusts the system CAs on its own). Backups: a base64 32-byte key
    # (`graphflags backup-key`) or a file holding one; backups are encrypted with it.
    tls_cert_file: Path | None = None
    tls_key_file: Path | None = None
    neo4j_trusted_ca: Path | None = Field(
        None, validation_alias=AliasChoices("GRAPHFLAGS_NEO4J_TRUSTED_CA", "NEO4J_TRUSTED_CA")
    )
    backup_key: SecretStr | None = None
    backup_key_file: Path | None = None

    @model_validator(mode="after")
    def _positive_numbers(self) -> Settings:
        for name in ("workers", "neo4j_pool_size", "max_body_bytes", "bulk_batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")
        return self

    @model_validator(mode="after")
    def _encryption_settings(self) -> Settings:
        if (self.tls_cert_file is None) != (self.tls_key_file is None):
            raise ValueError("set both GRAPHFLAGS_TLS_CERT_FILE and GRAPHFLAGS_TLS_KEY_FILE, or neither")
        if self.neo4j_trusted_ca is not None and "+s" in self.neo4j_uri.split("://", 1)[0]:
            raise ValueError(
                "GRAPHFLAGS_NEO4J_TRUSTED_CA needs a bolt:// or neo4j:// URI (the driver refuses a "
                "trust setting with +s/+ssc URIs, which choose their trust themselves)"
            )
        if self.jwt_jwks_file is not None and self.jwt_jwks_url is not None:
            raise ValueError("set GRAPHFLAGS_JWT_JWKS_FILE or GRAPHFLAGS_JWKS_URL, not both")
        if self.backup_key is not None and self.backup_key_file is not None:
            raise ValueError("set GRAPHFLAGS_BACKUP_KEY or GRAPHFLAGS_BACKUP_KEY_FILE, not both")
        if self.stream_base_url is not None and (self.stream_base_url.query or self.stream_base_url.fragment):
            raise ValueError("GRAPHFLAGS_STREAM_BASE_URL is a base URL: no query, no fragment")
        return self

    def neo4j_encryption(self) -> dict:
        """Extra driver options for Bolt over TLS, checked against a CA file; none otherwise."""
        if self.neo4j_trusted_ca is None:
            return {}
        import neo4j

        return {"encrypted": True, "trusted_certificates": neo4j.TrustCustomCAs(str(self.neo4j_trusted_ca))}

    def neo4j_auth(self) -> tuple[str, str]:
        if self.neo4j_password is not None:
            return self.neo4j_user, self.neo4j_password.get_secret_value()
        try:
            return self.neo4j_user, self.neo4j_password_file.read_text().strip()
        except FileNotFoundError:
            raise RuntimeError(
                f"no Neo4j password: set NEO4J_PASSWORD or create {self.neo4j_password_file} (make run does)"
            ) from None


@lru_cache
def get_settings() -> Settings:
    return Settings()
