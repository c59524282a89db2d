"""People who declare or work at a site: the person records, the one rule of which
people a caller may read, the console's search and the staff import.
"""
