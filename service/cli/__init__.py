"""The `checkin-gateway` commands: serve, migrate, tokens, accounts, keys, staff
import, audit verify, and the demo site of `make run`.
"""
