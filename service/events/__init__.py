"""The append-only event log with its hash chains, and the fan-out across instances
(LISTEN/NOTIFY). The consoles' live feed that reads it is service.console.feed.
"""
