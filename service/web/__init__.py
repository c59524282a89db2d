"""The HTTP edge shared by every feature: auth middleware and role decorators (with when
each token was last used), request validation, query parameters and text rules,
per-field errors, the OpenAPI document, response headers, the public limit, the probes
and page rendering (templates/, static/).

Imports `platform` and `checkin_core` only.
"""
