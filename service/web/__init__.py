"""The HTTP edge shared by every feature: auth middleware and role decorators, the one
error shape, request validation and text rules, per-field errors, the OpenAPI document,
response headers, the public limit and page rendering (templates/, static/).

Imports `platform`, `checkin_core` and identity's session and token stores.
"""
