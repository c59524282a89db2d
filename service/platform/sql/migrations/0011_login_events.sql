-- 0011: failed console logins, lockouts and login bursts are recorded in the event log
-- (site-less: chain 0), so an admin sees an attack on the logins in the record and the
-- console, not only in the process logs.
ALTER TABLE events DROP CONSTRAINT events_kind_valid;
ALTER TABLE events ADD CONSTRAINT events_kind_valid CHECK (kind IN (
    'scan', 'override', 'manual_exit', 'deny_list_add', 'deny_list_remove',
    'pass_revoked', 'declaration_reviewed', 'admin', 'export', 'trace', 'purge',
    'door_correction', 'login_failed', 'login_locked', 'login_burst'));
