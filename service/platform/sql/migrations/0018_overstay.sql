-- 0018, issue 22: a visitor past their declared departure, or a stay silent longer than
-- the site's silent_after_minutes, raises one `overstay` event (service/door/overstay.py),
-- which the site's webhook hears of.
ALTER TABLE events DROP CONSTRAINT events_kind_valid,
    ADD CONSTRAINT events_kind_valid CHECK (kind IN (
        'scan', 'override', 'manual_exit', 'deny_list_add', 'deny_list_remove',
        'pass_revoked', 'declaration_reviewed', 'admin', 'export', 'trace', 'purge',
        'door_correction', 'login_failed', 'login_locked', 'login_burst',
        'official_test', 'health_case', 'suspension', 'suspension_cleared',
        'auto_exit', 'presence_confirmed', 'id_check', 'overstay'));
