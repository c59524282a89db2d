"""Scans in, decisions out: the kiosk socket and HTTP with per-token limits
(kiosk_stream, kiosk_limits) and their messages (wire), the batcher (group commit), the
batch (batch: its steps top to bottom), its state read (state), the pure decision
(decision), what a batch will write and the write (plan), and the record of offline
allows against a gate's policy (offline_breach).
"""
