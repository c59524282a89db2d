"""Settings, read once from the environment and passed into the app factory."""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from aiohttp import web

from service.platform.clock import Clock, utc_now


class SettingsError(ValueError):
    """A setting has a value we cannot use; the message names the variable."""


@dataclass(frozen=True, kw_only=True)
class Settings:
    # None means: start the embedded PostgreSQL kept in data_dir (see service.platform.embedded).
    database_url: str | None = None
    # The fan-out's LISTEN connection, where it must differ from the pool's: a pooler in
    # transaction mode (PgBouncer) cannot carry a LISTEN (docs/scaling.md). None: the same.
    listen_database_url: str | None = None
    # asyncpg's prepared statements per connection; 0 behind PgBouncer 1.18 in
    # transaction mode, which cannot keep a connection's prepared statements.
    db_statement_cache_size: int = 100
    host: str = "127.0.0.1"
    port: int = 8080
    data_dir: Path = field(default_factory=lambda: Path(".data"))
    log_level: str = "INFO"
    max_body_bytes: int = 1024 * 1024
    pool_max_size: int = 20
    # A request waits at most this long for a database connection, then gets 503.
    db_acquire_timeout_s: float = 5.0
    db_command_timeout_s: float = 10.0
    # Personal data older than this is purged, checked every purge_interval_s.
    retention_days: int = 30
    purge_interval_s: float = 3600.0
    # An HTTP connection that sends no request this long (after connecting, or between
    # requests) is closed; so is a kiosk socket that sends no message (a kiosk heartbeats
    # every 5 s; WebSocket pings do not count: they prove the connection, not the kiosk).
    keepalive_timeout_s: float = 75.0
    kiosk_idle_timeout_s: float = 60.0
    # A console login lasts one guard shift; set secure cookies when served over HTTPS.
    session_hours: int = 12
    secure_cookies: bool = False
    # Abuse limits (per instance; see service/platform/ratelimit.py and the README's security part).
    # Console logins a minute per client address, and per username.
    login_per_minute_per_address: int = 20
    login_per_minute_per_username: int = 10
    # Public requests (declarations, pass images and pages) a minute per client address.
    public_per_minute_per_address: int = 120
    # ... and a second by everyone together, on one instance: what a flood from many
    # addresses may take from the door's event loop. Past it: 503 public_busy at once.
    public_per_second: int = 100
    # HTTP scan requests a second per kiosk token, and open sockets per kiosk token.
    kiosk_http_scans_per_second: int = 20
    kiosk_sockets_per_token: int = 2
    # Password hashing runs in this many threads, with at most hash_queue waiting;
    # past that a login is answered 503 at once instead of queueing.
    hash_workers: int = 1
    hash_queue: int = 8
    # Addresses of reverse proxies whose X-Forwarded-For is believed (comma-separated).
    trusted_proxies: frozenset[str] = frozenset()
    # An export streams at most this many bytes a second while scans are coming in
    # (service.platform.door_activity): the door comes first.
    export_bytes_per_s_door_busy: int = 4 * 1024 * 1024
    # Automatic check-outs are swept this often (service.door.auto_checkout).
    auto_checkout_interval_s: float = 15.0
    # Webhook deliveries are queued and sent this often; a failed one is tried again
    # after webhook_retry_base_s, then twice that, and so on (service.webhooks).
    webhook_interval_s: float = 2.0
    webhook_retry_base_s: float = 10.0
    # What "now" is for the background work and the presence views (tests move it).
    clock: Clock = utc_now

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        defaults = cls()
        return cls(
            database_url=env.get("DATABASE_URL") or None,
            listen_database_url=env.get("CHECKIN_LISTEN_DATABASE_URL") or None,
            db_statement_cache_size=_int(
                env,
                "CHECKIN_DB_STATEMENT_CACHE_SIZE",
                defaults.db_statement_cache_size,
                low=0,
                high=10_000,
            ),
            host=env.get("CHECKIN_HOST", defaults.host),
            port=_int(env, "CHECKIN_PORT", defaults.port, low=0, high=65535),
            data_dir=Path(env.get("CHECKIN_DATA_DIR", str(defaults.data_dir))),
            log_level=_choice(
                env, "CHECKIN_LOG_LEVEL", defaults.log_level, ("DEBUG", "INFO", "WARNING", "ERROR")
            ),
            max_body_bytes=_int(
                env, "CHECKIN_MAX_BODY_BYTES", defaults.max_body_bytes, low=1024, high=1 << 30
            ),
            pool_max_size=_int(
                env, "CHECKIN_POOL_MAX_SIZE", defaults.pool_max_size, low=1, high=500
            ),
            db_acquire_timeout_s=_float(
                env, "CHECKIN_DB_ACQUIRE_TIMEOUT", defaults.db_acquire_timeout_s, low=0.01
            ),
            db_command_timeout_s=_float(
                env, "CHECKIN_DB_COMMAND_TIMEOUT", defaults.db_command_timeout_s, low=0.1
            ),
            retention_days=_int(
                env, "CHECKIN_RETENTION_DAYS", defaults.retention_days, low=1, high=3650
            ),
            purge_interval_s=_float(
                env, "CHECKIN_PURGE_INTERVAL", defaults.purge_interval_s, low=1.0
            ),
            webhook_interval_s=_float(
                env, "CHECKIN_WEBHOOK_INTERVAL", defaults.webhook_interval_s, low=0.1
            ),
            webhook_retry_base_s=_float(
                env, "CHECKIN_WEBHOOK_RETRY_BASE", defaults.webhook_retry_base_s, low=0.1
            ),
            export_bytes_per_s_door_busy=_int(
                env,
                "CHECKIN_EXPORT_RATE_DOOR_BUSY",
                defaults.export_bytes_per_s_door_busy,
                low=64 * 1024,
                high=1 << 40,
            ),
            auto_checkout_interval_s=_float(
                env,
                "CHECKIN_AUTO_CHECKOUT_INTERVAL",
                defaults.auto_checkout_interval_s,
                low=0.1,
                high=30.0,  # the promise: at least every 30 s
            ),
            keepalive_timeout_s=_float(
                env, "CHECKIN_KEEPALIVE_TIMEOUT", defaults.keepalive_timeout_s, low=1.0
            ),
            kiosk_idle_timeout_s=_float(
                env, "CHECKIN_KIOSK_IDLE_TIMEOUT", defaults.kiosk_idle_timeout_s, low=1.0
            ),
            session_hours=_int(
                env, "CHECKIN_SESSION_HOURS", defaults.session_hours, low=1, high=24 * 7
            ),
            secure_cookies=_choice(env, "CHECKIN_SECURE_COOKIES", "FALSE", ("TRUE", "FALSE"))
            == "TRUE",
            login_per_minute_per_address=_int(
                env,
                "CHECKIN_LOGIN_PER_MINUTE_PER_ADDRESS",
                defaults.login_per_minute_per_address,
                low=1,
                high=100_000,
            ),
            login_per_minute_per_username=_int(
                env,
                "CHECKIN_LOGIN_PER_MINUTE_PER_USERNAME",
                defaults.login_per_minute_per_username,
                low=1,
                high=100_000,
            ),
            public_per_minute_per_address=_int(
                env,
                "CHECKIN_PUBLIC_PER_MINUTE_PER_ADDRESS",
                defaults.public_per_minute_per_address,
                low=1,
                high=1_000_000,
            ),
            public_per_second=_int(
                env, "CHECKIN_PUBLIC_PER_SECOND", defaults.public_per_second, low=1, high=100_000
            ),
            kiosk_http_scans_per_second=_int(
                env,
                "CHECKIN_KIOSK_HTTP_SCANS_PER_SECOND",
                defaults.kiosk_http_scans_per_second,
                low=1,
                high=100_000,
            ),
            kiosk_sockets_per_token=_int(
                env,
                "CHECKIN_KIOSK_SOCKETS_PER_TOKEN",
                defaults.kiosk_sockets_per_token,
                low=1,
                high=1_000_000,
            ),
            hash_workers=_int(env, "CHECKIN_HASH_WORKERS", defaults.hash_workers, low=1, high=64),
            hash_queue=_int(env, "CHECKIN_HASH_QUEUE", defaults.hash_queue, low=0, high=10_000),
            trusted_proxies=_addresses(env, "CHECKIN_TRUSTED_PROXIES"),
        )


def _int(env: Mapping[str, str], name: str, default: int, *, low: int, high: int) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{name} must be an integer, got {raw!r}") from None
    if not low <= value <= high:
        raise SettingsError(f"{name} must be between {low} and {high}, got {value}")
    return value


def _float(
    env: Mapping[str, str], name: str, default: float, *, low: float, high: float = float("inf")
) -> float:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise SettingsError(f"{name} must be a number, got {raw!r}") from None
    if not value >= low:
        raise SettingsError(f"{name} must be at least {low}, got {value}")
    if value > high:
        raise SettingsError(f"{name} must be at most {high}, got {value}")
    return value


def _addresses(env: Mapping[str, str], name: str) -> frozenset[str]:
    found = set()
    for raw in env.get(name, "").split(","):
        if raw.strip():
            try:
                found.add(str(ipaddress.ip_address(raw.strip())))
            except ValueError:
                raise SettingsError(f"{name} must list IP addresses, got {raw.strip()!r}") from None
    return frozenset(found)


def _choice(env: Mapping[str, str], name: str, default: str, choices: tuple[str, ...]) -> str:
    value = env.get(name, default).upper()
    if value not in choices:
        raise SettingsError(f"{name} must be one of {', '.join(choices)}, got {value!r}")
    return value


SETTINGS_KEY = web.AppKey("settings", Settings)
