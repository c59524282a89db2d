-- 0016, issue 21: a guard's one-tap "ID checked" for a printed pass at a guard_check site
-- (service/door/overrides.py, POST /api/v1/id-checks) is an event of its own kind.
ALTER TABLE events DROP CONSTRAINT events_kind_valid,
    ADD CONSTRAINT events_kind_valid CHECK (kind IN (
        'scan', 'override', 'manual_exit', 'deny_list_add', 'deny_list_remove',
        'pass_revoked', 'declaration_reviewed', 'admin', 'export', 'trace', 'purge',
        'door_correction', 'login_failed', 'login_locked', 'login_burst',
        'official_test', 'health_case', 'suspension', 'suspension_cleared',
        'auto_exit', 'presence_confirmed', 'id_check'));
