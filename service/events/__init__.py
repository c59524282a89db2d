"""The append-only event log with its hash chains, the fan-out across instances
(LISTEN/NOTIFY) and the consoles' live feed.
"""
