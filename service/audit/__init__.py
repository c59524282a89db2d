"""The auditor's view of the record: exports, chain verification, a person's movements,
the daily site report and contact tracing (truy vết).
"""
