"""The health officer's desk (cán bộ y tế): official test results, confirmed cases with
their contacts, suspensions at the door and their clearance, and re-screening when an
area is flagged (rà soát). The rank of an official result over the person's word is
service.declarations.official_rank; the purge of health records, service.retention.
"""
