"""Scans in, decisions out: the kiosk socket and HTTP (with per-token limits), the
batcher (group commit), the state read, the pure decision, the batch write, and the
record of offline allows against a gate's policy.
"""
