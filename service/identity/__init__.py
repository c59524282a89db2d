"""Who is calling from the console: accounts and their passwords (hashed off the loop),
sessions, login limits with the record of failed logins, and sockets that end with the
login behind them. API tokens and the role checks are service.web.auth.
"""
