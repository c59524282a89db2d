-- 0003: the check-in core: the append-only, hash-chained event log, presence (who is
-- inside), the deny list and the latest health report of each kiosk.

-- The head of each hash chain: one per site, and chain 0 for events of no site.
-- Appending locks the head row until commit, so `seq` is gap-free and in commit
-- order within a chain: a console resumes from the last seq it saw.
CREATE TABLE event_chains (
    chain_id    bigint PRIMARY KEY CONSTRAINT event_chains_id_nonnegative CHECK (chain_id >= 0),
    last_seq    bigint NOT NULL DEFAULT 0,
    last_hash   bytea NOT NULL DEFAULT '\x0000000000000000000000000000000000000000000000000000000000000000'::bytea
                CONSTRAINT event_chains_hash_length CHECK (length(last_hash) = 32)
);
INSERT INTO event_chains (chain_id) SELECT 0 UNION ALL SELECT id FROM sites;

CREATE FUNCTION sites_add_event_chain() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO event_chains (chain_id) VALUES (NEW.id);
    RETURN NEW;
END $$;
CREATE TRIGGER sites_event_chain AFTER INSERT ON sites
    FOR EACH ROW EXECUTE FUNCTION sites_add_event_chain();

-- Everything that happened, in order: scans with their decision, overrides, manual
-- exits, deny-list and admin changes. Rows are never updated or deleted (except by
-- the retention purge, which keeps digest and hashes so the chain still verifies).
-- digest = sha256 of the record's canonical form; hash = sha256(prev_hash || digest).
-- No foreign keys on purpose: the log outlives the rows it names (people are purged,
-- the record of what happened stays), and each one would cost a lookup per scan.
CREATE TABLE events (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    chain_id        bigint NOT NULL,
    seq             bigint NOT NULL CONSTRAINT events_seq_positive CHECK (seq > 0),
    kind            text NOT NULL CONSTRAINT events_kind_valid CHECK (kind IN (
                        'scan', 'override', 'manual_exit', 'deny_list_add', 'deny_list_remove',
                        'pass_revoked', 'declaration_reviewed', 'admin', 'export', 'trace', 'purge',
                        'door_correction')),
    occurred_at     timestamptz NOT NULL,
    recorded_at     timestamptz NOT NULL DEFAULT now(),
    site_id         bigint,
    gate_id         bigint,
    person_id       bigint,
    pass_id         uuid,
    event_id        uuid CONSTRAINT events_event_id_key UNIQUE,
    direction       text CONSTRAINT events_direction_valid CHECK (direction IN ('in', 'out')),
    decision        text CONSTRAINT events_decision_valid CHECK (decision IN ('allow', 'deny')),
    reason          text,
    actor           text NOT NULL,
    detail          jsonb NOT NULL DEFAULT '{}'::jsonb,
    digest          bytea NOT NULL CONSTRAINT events_digest_length CHECK (length(digest) = 32),
    prev_hash       bytea NOT NULL CONSTRAINT events_prev_hash_length CHECK (length(prev_hash) = 32),
    hash            bytea NOT NULL CONSTRAINT events_hash_length CHECK (length(hash) = 32),
    CONSTRAINT events_chain_seq_key UNIQUE (chain_id, seq),
    CONSTRAINT events_chain_is_site CHECK (chain_id = coalesce(site_id, 0)),
    CONSTRAINT events_scan_complete CHECK (kind <> 'scan' OR (event_id IS NOT NULL AND decision IS NOT NULL
                                                              AND reason IS NOT NULL AND gate_id IS NOT NULL))
);
CREATE INDEX events_pass_recent_idx ON events (pass_id, occurred_at) WHERE pass_id IS NOT NULL;
CREATE INDEX events_person_idx ON events (person_id, occurred_at) WHERE person_id IS NOT NULL;
-- Time ranges (exports, tracing): events arrive in time order, so a BRIN index is
-- small and nearly free to maintain on the hot path.
CREATE INDEX events_time_brin ON events USING brin (occurred_at);

-- Stays: one row per entry, closed by the matching exit. At most one open stay per
-- person and site (anti-passback holds even across service instances).
CREATE TABLE presence (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    site_id         bigint NOT NULL REFERENCES sites (id),
    person_id       bigint NOT NULL REFERENCES people (id),
    entered_at      timestamptz NOT NULL,
    entry_gate_id   bigint REFERENCES gates (id),
    entry_event     bigint NOT NULL,  -- events.id (no key: see events)
    exited_at       timestamptz,
    exit_gate_id    bigint REFERENCES gates (id),
    exit_event      bigint,
    exit_kind       text CONSTRAINT presence_exit_kind_valid CHECK (exit_kind IN ('scan', 'manual')),
    CONSTRAINT presence_exit_complete CHECK ((exited_at IS NULL) = (exit_kind IS NULL)),
    CONSTRAINT presence_exit_after_entry CHECK (exited_at IS NULL OR exited_at >= entered_at)
);
CREATE UNIQUE INDEX presence_open_key ON presence (site_id, person_id) WHERE exited_at IS NULL;
CREATE INDEX presence_person_idx ON presence (person_id, entered_at);
CREATE INDEX presence_site_time_idx ON presence (site_id, entered_at);

-- People refused at the door whatever their pass says, per site or everywhere (NULL).
CREATE TABLE deny_list (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    person_id       bigint NOT NULL REFERENCES people (id),
    site_id         bigint REFERENCES sites (id),
    reason          text NOT NULL CONSTRAINT deny_list_reason_length CHECK (length(reason) BETWEEN 1 AND 500),
    added_by        text NOT NULL,
    added_at        timestamptz NOT NULL DEFAULT now(),
    removed_at      timestamptz,
    removed_by      text,
    removed_reason  text,
    CONSTRAINT deny_list_removal_complete CHECK ((removed_at IS NULL) = (removed_by IS NULL))
);
CREATE UNIQUE INDEX deny_list_active_key ON deny_list (person_id, coalesce(site_id, 0))
    WHERE removed_at IS NULL;

-- The latest health report of each kiosk (fps, decode counts, queue and outbox depth,
-- camera state), replaced by each heartbeat.
CREATE TABLE kiosk_health (
    token_id        bigint PRIMARY KEY REFERENCES api_tokens (id),
    gate_id         bigint NOT NULL REFERENCES gates (id),
    reported_at     timestamptz NOT NULL,
    report          jsonb NOT NULL CONSTRAINT kiosk_health_report_object CHECK (jsonb_typeof(report) = 'object')
);
