"""Sites, their gates, the declaration rules with flagged areas, and the door rules:
the admin API and its SQL.
"""
