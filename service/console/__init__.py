"""The guard console at /console: login, logout, the live page, the roll call, and the
live event feed (feed.py). Templates and static files are served by service.web.
"""
