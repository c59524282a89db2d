"""The retention purge: personal data older than the retention period goes, in one
transaction across every package's tables (declarations, passes, stays, visitors, the
health desk's records); the record of what happened, its hash chain and the daily counts
stay. Sits above the feature packages because it spans them.
"""
