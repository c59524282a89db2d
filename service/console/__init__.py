"""The guard console at /console: login, logout, the live page and the roll call
(templates and static files are served by service.web).
"""
