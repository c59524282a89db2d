"""The app factory: wires routes, middlewares and resources; does no I/O itself."""

from __future__ import annotations

from aiohttp import web
from aiohttp_session import session_middleware

from service import (
    accounts,
    audit,
    console,
    declarations,
    declare_form,
    door,
    event_stream,
    health,
    health_cases,
    health_suspensions,
    health_tests,
    keys,
    kiosk_stream,
    login_guard,
    occupancy,
    openapi,
    overrides,
    people_search,
    rules,
    sites,
    trace,
)
from service.auth import auth_middleware
from service.batcher import batcher_context
from service.db import pool_context
from service.errors import error_middleware
from service.fanout import fanout_context
from service.hashing import hash_pool_context
from service.http_headers import default_headers
from service.kiosk_limits import KIOSK_LIMITS_KEY, KioskLimits
from service.login_watch import login_watch_context
from service.pass_links import PASS_LINKS_KEY, pass_links_for
from service.public_limit import PUBLIC_LIMITER_KEY, public_limiter
from service.qr import renderer_context
from service.retention import retention_context
from service.sessions import PostgresSessionStorage
from service.settings import SETTINGS_KEY, Settings
from service.token_usage import token_usage_context
from service.validation import query_rules_middleware


def create_app(*, settings: Settings) -> web.Application:
    sessions = PostgresSessionStorage(
        max_age_s=settings.session_hours * 3600, secure=settings.secure_cookies
    )
    app = web.Application(
        middlewares=[
            error_middleware,
            session_middleware(sessions),
            auth_middleware,
            query_rules_middleware,
        ],
        client_max_size=settings.max_body_bytes,
    )
    app[SETTINGS_KEY] = settings
    app.on_response_prepare.append(default_headers)
    app[keys.KEYS_KEY] = keys.key_store_for(settings.data_dir)
    app[PASS_LINKS_KEY] = pass_links_for(settings.data_dir)
    app[PUBLIC_LIMITER_KEY] = public_limiter(settings)
    app[KIOSK_LIMITS_KEY] = KioskLimits(settings)
    app.cleanup_ctx.append(pool_context(settings))
    app.cleanup_ctx.append(fanout_context(settings))
    app.cleanup_ctx.append(token_usage_context)
    app.cleanup_ctx.append(login_watch_context)
    app.cleanup_ctx.append(batcher_context)
    app.cleanup_ctx.append(renderer_context())
    app.cleanup_ctx.append(hash_pool_context(settings))
    app.cleanup_ctx.append(login_guard.login_guard_context(settings))
    app.cleanup_ctx.append(retention_context(settings))
    app.add_routes(health.routes())
    app.add_routes(sites.routes())
    app.add_routes(keys.routes())
    app.add_routes(declarations.routes())
    app.add_routes(rules.routes())
    app.add_routes(declare_form.routes())
    app.add_routes(kiosk_stream.routes())
    app.add_routes(event_stream.routes())
    app.add_routes(door.routes())
    app.add_routes(overrides.routes())
    app.add_routes(openapi.routes())
    app.add_routes(audit.routes())
    app.add_routes(trace.routes())
    app.add_routes(people_search.routes())
    app.add_routes(occupancy.routes())
    app.add_routes(console.routes())
    app.add_routes(accounts.routes())
    app.add_routes(login_guard.routes())
    app.on_startup.append(openapi.build_documents)
    app.add_routes(health_cases.routes())
    app.add_routes(health_tests.routes())
    app.add_routes(health_suspensions.routes())
    return app
