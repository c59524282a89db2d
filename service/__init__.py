"""The gateway service: aiohttp + asyncpg on PostgreSQL.

One package per concern. Dependencies point down: `cli` -> `app` -> the feature
packages (identity, declarations, passes, people, sites, checkin, events, door, audit,
health, console) -> `web` -> `platform` and `checkin_core`. The import contracts in
pyproject.toml hold these rules (tests/test_architecture.py runs them).
"""
