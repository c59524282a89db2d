"""The health officer's desk (cán bộ y tế): official test results and their rank over
the person's word, confirmed cases with their contacts, suspensions at the door and
their clearance, re-screening when an area is flagged (rà soát), and retention of
health records.
"""
