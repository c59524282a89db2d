"""The auditor's view of the record: event-log exports (api), how exports are written and
recorded (documents), chain verification (chain), a person's movements (movements), the
daily site report (site_report) and contact tracing, truy vết (trace).
"""
