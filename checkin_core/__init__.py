"""What the kiosk and the gateway share, with no server dependencies (cryptography and
the standard library only): the pass format with its Ed25519 signing and verifying, the
trust list, the door's reason codes with their vi/en words, and small asyncio helpers.

Imports nothing from `service` or `scanner`.
"""
