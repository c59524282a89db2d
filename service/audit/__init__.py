"""The auditor's view of the record: exports, chain verification, a person's movements,
the daily site report, contact tracing (truy vết) and the retention purge.
"""
