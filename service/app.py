"""The app factory: wires routes, middlewares and resources; does no I/O itself."""

from __future__ import annotations

from aiohttp import web
from aiohttp_session import session_middleware

from service.audit import api as audit_api
from service.audit import trace
from service.checkin import kiosk_stream, kiosk_sync
from service.checkin.batcher import batcher_context
from service.checkin.kiosk_limits import KIOSK_LIMITS_KEY, KioskLimits
from service.checkin.kiosk_push import knowledge_push_context
from service.console import feed as console_feed
from service.console import pages as console_pages
from service.declarations import api as declarations_api
from service.declarations import form, phone_page, result_page, review
from service.declarations import pages as declaration_pages
from service.door import actions as door_actions
from service.door import occupancy, overrides, roll_call
from service.door.auto_checkout import auto_checkout_context
from service.events.fanout import fanout_context
from service.health import (
    case_contacts,
    case_report,
    cases,
    desk_reports,
    official_tests,
    suspensions,
)
from service.identity import accounts, login_guard
from service.identity.hashing import hash_pool_context
from service.identity.login_watch import login_watch_context
from service.identity.sessions import PostgresSessionStorage
from service.passes import keys
from service.passes.links import PASS_LINKS_KEY, pass_links_for
from service.passes.qr import renderer_context
from service.people import search as people_search
from service.platform.clock import CLOCK_KEY
from service.platform.db import pool_context
from service.platform.door_activity import DOOR_ACTIVITY_KEY, DoorActivity
from service.platform.errors import error_middleware
from service.platform.settings import SETTINGS_KEY, Settings
from service.retention.purge import retention_context
from service.sites import gates, rules
from service.web import openapi, probes
from service.web.auth import auth_middleware
from service.web.http_headers import default_headers
from service.web.pages import setup_pages
from service.web.public_limit import PUBLIC_LIMITER_KEY, public_limiter
from service.web.token_usage import token_usage_context
from service.web.validation import query_rules_middleware
from service.webhooks import api as webhooks_api
from service.webhooks.worker import webhook_context


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
    app[CLOCK_KEY] = settings.clock
    app[DOOR_ACTIVITY_KEY] = DoorActivity()
    app.on_response_prepare.append(default_headers)
    setup_pages(app)
    app[keys.KEYS_KEY] = keys.key_store_for(settings.data_dir)
    app[PASS_LINKS_KEY] = pass_links_for(settings.data_dir)
    app[PUBLIC_LIMITER_KEY] = public_limiter(settings)
    app[KIOSK_LIMITS_KEY] = KioskLimits(settings)
    app.cleanup_ctx.append(pool_context(settings))
    app.cleanup_ctx.append(fanout_context(settings))
    app.cleanup_ctx.append(knowledge_push_context)
    app.cleanup_ctx.append(token_usage_context)
    app.cleanup_ctx.append(login_watch_context)
    app.cleanup_ctx.append(batcher_context)
    app.cleanup_ctx.append(renderer_context())
    app.cleanup_ctx.append(hash_pool_context(settings))
    app.cleanup_ctx.append(login_guard.login_guard_context(settings))
    app.cleanup_ctx.append(retention_context(settings))
    app.cleanup_ctx.append(auto_checkout_context)
    app.cleanup_ctx.append(webhook_context)
    app.add_routes(probes.routes())
    app.add_routes(gates.routes())
    app.add_routes(keys.routes())
    app.add_routes(declarations_api.routes())
    app.add_routes(review.routes())
    app.add_routes(rules.routes())
    app.add_routes(form.routes())
    app.add_routes(declaration_pages.routes())
    app.add_routes(result_page.routes())
    app.add_routes(phone_page.routes())
    app.add_routes(kiosk_stream.routes())
    app.add_routes(kiosk_sync.routes())
    app.add_routes(console_feed.routes())
    app.add_routes(door_actions.routes())
    app.add_routes(roll_call.routes())
    app.add_routes(webhooks_api.routes())
    app.add_routes(overrides.routes())
    app.add_routes(openapi.routes())
    app.add_routes(audit_api.routes())
    app.add_routes(trace.routes())
    app.add_routes(people_search.routes())
    app.add_routes(occupancy.routes())
    app.add_routes(console_pages.routes())
    app.add_routes(accounts.routes())
    app.add_routes(login_guard.routes())
    app.on_startup.append(openapi.build_documents)
    app.add_routes(cases.routes())
    app.add_routes(case_contacts.routes())
    app.add_routes(official_tests.routes())
    app.add_routes(suspensions.routes())
    app.add_routes(desk_reports.routes())
    app.add_routes(case_report.routes())
    return app
