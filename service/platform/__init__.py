"""What every part of the service stands on: settings, the connection pool, the embedded
PostgreSQL, migrations (sql/ inside the package), the one error shape, structured logs,
background tasks, CPU offloading, rate limits and the HTTP server.

Imports only `checkin_core`; nothing in it knows a feature.
"""
