"""The health officer's desk (cán bộ y tế): official test results, confirmed cases with
their contacts, suspensions at the door and their clearance, and re-screening when an
area is flagged (rà soát), a lab's results imported from CSV (test_import), who is due
for a test by cadence (tests_due), and the reports for the health authority (chế độ
báo cáo: case_report, desk_reports, printed by pages). The rank of an official result
over the person's word is service.declarations.official_rank; the purge of health
records, service.retention.
"""
