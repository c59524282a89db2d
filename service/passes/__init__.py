"""Signed passes on the server side: signing keys and their rotation, the cached trust
list of published keys, a pass's state, QR images (rendered in another process) and the
secret links to a pass's own pages. The pass format itself is checkin_core.passes.
"""
