"""Who is calling: console accounts and their passwords (hashed off the loop), sessions,
login limits and the record of failed logins, sockets that end with their login, rate
limits and when each token was last used.
"""
