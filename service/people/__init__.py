"""People who declare or work at a site: how a person is written down (fields), the
person records, the one rule of which people a caller may read (scope), the console's
search and the staff import.
"""
