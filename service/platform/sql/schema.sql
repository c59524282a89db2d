-- checkin-gateway: the schema of record.
--
-- A fresh database gets this file as it is (`checkin-gateway migrate`), and is then
-- marked as being at the newest migration. A database made by an earlier version is
-- brought up to date by the numbered files in service/migrations/ instead; a test
-- checks that both roads end in the same catalogue, so edit both together.
--
-- Conventions: bigint identity keys (uuid where a client makes the id), timestamps
-- are timestamptz named *_at, every constraint and index is named.

-- Which numbered migrations this database has run.
CREATE TABLE schema_migrations (
    version     integer PRIMARY KEY CHECK (version > 0),
    name        text NOT NULL,
    applied_at  timestamptz NOT NULL DEFAULT now()
);

-- A place whose entrances we control (an office building, a customs branch).
CREATE TABLE sites (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    code        text NOT NULL CONSTRAINT sites_code_key UNIQUE
                CONSTRAINT sites_code_format CHECK (code ~ '^[a-z0-9][a-z0-9-]{0,39}$'),
    name        text NOT NULL CONSTRAINT sites_name_length CHECK (length(name) BETWEEN 1 AND 200),
    timezone    text NOT NULL DEFAULT 'Asia/Ho_Chi_Minh',
    capacity    integer CONSTRAINT sites_capacity_positive CHECK (capacity > 0),
    -- The declaration policy (service.declarations.policy.SiteRules as JSON; {} means the defaults)
    -- and the door rules of the check-in core (service.sites.door_rules.CheckinRules).
    declaration_rules jsonb NOT NULL DEFAULT '{}'::jsonb
        CONSTRAINT sites_declaration_rules_object CHECK (jsonb_typeof(declaration_rules) = 'object'),
    checkin_rules jsonb NOT NULL DEFAULT '{}'::jsonb
        CONSTRAINT sites_checkin_rules_object CHECK (jsonb_typeof(checkin_rules) = 'object'),
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- A door of a site with a kiosk: which way people go through it and when it is open.
CREATE TABLE gates (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    site_id         bigint NOT NULL REFERENCES sites (id),
    name            text NOT NULL CONSTRAINT gates_name_length CHECK (length(name) BETWEEN 1 AND 120),
    direction       text NOT NULL CONSTRAINT gates_direction_valid
                    CHECK (direction IN ('entrance', 'exit', 'both')),
    opening_hours   jsonb NOT NULL DEFAULT '[]'::jsonb
                    CONSTRAINT gates_opening_hours_array CHECK (jsonb_typeof(opening_hours) = 'array'),
    offline_policy  text NOT NULL DEFAULT 'deny'
                    CONSTRAINT gates_offline_policy_valid CHECK (offline_policy IN ('deny', 'verify-offline')),
    created_at      timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT gates_site_name_key UNIQUE (site_id, name)
);
CREATE INDEX gates_site_idx ON gates (site_id);

-- Bearer tokens for the API. Only a SHA-256 of the token is kept; the token itself
-- is shown once, when it is created. A kiosk token is bound to exactly one gate.
CREATE TABLE api_tokens (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    token_hash  bytea NOT NULL CONSTRAINT api_tokens_hash_key UNIQUE
                CONSTRAINT api_tokens_hash_length CHECK (length(token_hash) = 32),
    role        text NOT NULL CONSTRAINT api_tokens_role_valid
                CHECK (role IN ('admin', 'guard', 'auditor', 'kiosk', 'health')),
    site_id     bigint REFERENCES sites (id),
    gate_id     bigint REFERENCES gates (id),
    label       text NOT NULL DEFAULT '' CONSTRAINT api_tokens_label_length CHECK (length(label) <= 120),
    created_at  timestamptz NOT NULL DEFAULT now(),
    revoked_at  timestamptz,
    -- Approximate (service/identity/token_usage.py): up to about two minutes behind.
    last_used_at timestamptz,
    CONSTRAINT api_tokens_kiosk_has_gate CHECK ((role = 'kiosk') = (gate_id IS NOT NULL))
);

-- Areas with community cases, maintained by an admin per site (dates in site time).
CREATE TABLE flagged_areas (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    site_id         bigint NOT NULL REFERENCES sites (id),
    name            text NOT NULL CONSTRAINT flagged_areas_name_length CHECK (length(name) BETWEEN 1 AND 100),
    code            text CONSTRAINT flagged_areas_code_length CHECK (length(code) BETWEEN 1 AND 40),
    flagged_from    date NOT NULL,
    flagged_until   date,
    created_at      timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT flagged_areas_period CHECK (flagged_until IS NULL OR flagged_until >= flagged_from)
);
CREATE INDEX flagged_areas_site_idx ON flagged_areas (site_id);

-- A person who declares: staff (with a position and a job risk level) or a visitor.
-- Known by phone (+84...) and/or national ID; either identifies them on re-declaring.
CREATE TABLE people (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind            text NOT NULL CONSTRAINT people_kind_valid CHECK (kind IN ('staff', 'visitor')),
    full_name       text NOT NULL CONSTRAINT people_full_name_length CHECK (length(full_name) BETWEEN 1 AND 120),
    phone           text CONSTRAINT people_phone_format CHECK (phone ~ '^\+84[0-9]{9}$'),
    national_id     text CONSTRAINT people_national_id_format CHECK (national_id ~ '^([0-9]{9}|[0-9]{12})$'),
    organisation    text CONSTRAINT people_organisation_length CHECK (length(organisation) <= 200),
    position        text CONSTRAINT people_position_length CHECK (length(position) <= 120),
    risk_level      text CONSTRAINT people_risk_level_valid
                    CHECK (risk_level IN ('very_high', 'high', 'medium', 'low')),
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT people_identified CHECK (phone IS NOT NULL OR national_id IS NOT NULL),
    CONSTRAINT people_risk_for_staff CHECK (kind = 'staff' OR risk_level IS NULL)
);
CREATE UNIQUE INDEX people_phone_key ON people (phone) WHERE phone IS NOT NULL;
CREATE UNIQUE INDEX people_national_id_key ON people (national_id) WHERE national_id IS NOT NULL;
CREATE INDEX people_name_idx ON people (lower(full_name));

-- Every health declaration ever filed; the newest per person and site is current, the
-- older ones have superseded_at set. Answers are kept as filed (JSON).
-- A declaration that claims a known phone or national ID without proof has no person
-- (person_id NULL) until an officer has checked the declarer's papers, and is never
-- cleared as such. redeclare_key_hash: SHA-256 of the key its declarer was shown once;
-- presenting it proves a later declaration comes from them.
CREATE TABLE declarations (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    person_id       bigint REFERENCES people (id),
    site_id         bigint NOT NULL REFERENCES sites (id),
    answers         jsonb NOT NULL,
    status          text NOT NULL CONSTRAINT declarations_status_valid
                    CHECK (status IN ('cleared', 'review', 'rejected')),
    reasons         jsonb NOT NULL DEFAULT '[]'::jsonb,
    submitted_at    timestamptz NOT NULL DEFAULT now(),
    valid_until     timestamptz NOT NULL,
    superseded_at   timestamptz,
    reviewed_by     text,
    reviewed_at     timestamptz,
    redeclare_key_hash bytea CONSTRAINT declarations_redeclare_key_length
                    CHECK (length(redeclare_key_hash) = 32),
    CONSTRAINT declarations_valid_after_submit CHECK (valid_until > submitted_at),
    CONSTRAINT declarations_claim_not_cleared CHECK (person_id IS NOT NULL OR status <> 'cleared')
);
CREATE UNIQUE INDEX declarations_current_key ON declarations (person_id, site_id)
    WHERE superseded_at IS NULL;
CREATE UNIQUE INDEX declarations_redeclare_key ON declarations (redeclare_key_hash)
    WHERE redeclare_key_hash IS NOT NULL;
CREATE INDEX declarations_review_idx ON declarations (site_id, submitted_at)
    WHERE status = 'review' AND superseded_at IS NULL;
-- Declarations that contradicted an official record (service/health/official_rank.py),
-- counted per person and site.
CREATE INDEX declarations_mismatch_idx ON declarations (person_id, site_id)
    WHERE reasons @> '[{"code": "declaration_mismatch"}]';

-- Public halves of the pass-signing keys (the private halves live in the data folder).
-- One key is active (signs new passes); retiring keys still verify until their passes
-- expire; retired keys are no longer published.
CREATE TABLE signing_keys (
    kid             text PRIMARY KEY CONSTRAINT signing_keys_kid_format CHECK (kid ~ '^[0-9a-f]{8}$'),
    public_key      bytea NOT NULL CONSTRAINT signing_keys_public_key_length CHECK (length(public_key) = 32),
    status          text NOT NULL CONSTRAINT signing_keys_status_valid
                    CHECK (status IN ('active', 'retiring', 'retired')),
    created_at      timestamptz NOT NULL DEFAULT now(),
    retired_at      timestamptz
);
CREATE UNIQUE INDEX signing_keys_one_active_key ON signing_keys (status) WHERE status = 'active';

-- Signed passes issued for cleared declarations. The QR payload is kept so the pass
-- can be shown again; revoked_at set means the door refuses it from then on.
CREATE TABLE passes (
    id              uuid PRIMARY KEY,
    person_id       bigint NOT NULL REFERENCES people (id),
    site_id         bigint NOT NULL REFERENCES sites (id),
    declaration_id  bigint NOT NULL REFERENCES declarations (id),
    kid             text NOT NULL REFERENCES signing_keys (kid),
    payload         text NOT NULL,
    not_before      timestamptz NOT NULL,
    not_after       timestamptz NOT NULL,
    issued_at       timestamptz NOT NULL DEFAULT now(),
    revoked_at      timestamptz,
    revoked_reason  text,
    revoked_by      text,
    CONSTRAINT passes_window CHECK (not_after > not_before),
    CONSTRAINT passes_revocation_complete CHECK ((revoked_at IS NULL) = (revoked_reason IS NULL))
);
CREATE INDEX passes_person_idx ON passes (person_id, issued_at DESC);
CREATE INDEX passes_kid_idx ON passes (kid, not_after);
CREATE INDEX passes_site_idx ON passes (site_id, not_after);  -- kiosks' offline copies

-- The head of each hash chain: one per site, and chain 0 for events of no site.
-- Appending locks the head row until commit, so `seq` is gap-free and in commit
-- order within a chain: a console resumes from the last seq it saw.
CREATE TABLE event_chains (
    chain_id    bigint PRIMARY KEY CONSTRAINT event_chains_id_nonnegative CHECK (chain_id >= 0),
    last_seq    bigint NOT NULL DEFAULT 0,
    last_hash   bytea NOT NULL DEFAULT '\x0000000000000000000000000000000000000000000000000000000000000000'::bytea
                CONSTRAINT event_chains_hash_length CHECK (length(last_hash) = 32)
);
INSERT INTO event_chains (chain_id) VALUES (0);  -- the chain of events of no site

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
                        'door_correction', 'login_failed', 'login_locked', 'login_burst',
                        'official_test', 'health_case', 'suspension',
                        'suspension_cleared', 'auto_exit', 'presence_confirmed', 'id_check',
                        'overstay')),
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
    exit_kind       text CONSTRAINT presence_exit_kind_valid CHECK (exit_kind IN ('scan', 'manual', 'auto', 'gone')),
    CONSTRAINT presence_exit_complete CHECK ((exited_at IS NULL) = (exit_kind IS NULL)),
    CONSTRAINT presence_exit_after_entry CHECK (exited_at IS NULL OR exited_at >= entered_at),
    -- An estimated end (automatic check-out 'auto', a guard's 'gone') keeps the last
    -- evidence of the person (service/door/auto_checkout.py).
    last_evidence_at timestamptz,
    CONSTRAINT presence_evidence_of_estimate CHECK (last_evidence_at IS NULL OR (
        exit_kind IN ('auto', 'gone') AND last_evidence_at >= entered_at AND last_evidence_at <= exited_at))
);
CREATE UNIQUE INDEX presence_open_key ON presence (site_id, person_id) WHERE exited_at IS NULL;
CREATE INDEX presence_person_idx ON presence (person_id, entered_at);
CREATE INDEX presence_site_time_idx ON presence (site_id, entered_at);
-- The sweep: a site's open stays by entry time.
CREATE INDEX presence_open_entered_idx ON presence (site_id, entered_at) WHERE exited_at IS NULL;
-- The day's automatic check-outs (roll call, occupancy chart).
CREATE INDEX presence_auto_exit_idx ON presence (site_id, exited_at) WHERE exit_kind IN ('auto', 'gone');
-- Contact tracing: the stays overlapping a span, bounded from both sides.
CREATE INDEX presence_span_idx ON presence USING gist (tstzrange(entered_at, exited_at));

-- Notifications to other systems (service/webhooks): a site's URL and signing secret,
-- how far into the site's chain the events were queued, and each delivery's attempts.
CREATE TABLE webhooks (
    site_id         bigint PRIMARY KEY REFERENCES sites (id),
    url             text NOT NULL CONSTRAINT webhooks_url_http CHECK (url ~ '^https?://' AND length(url) <= 2000),
    secret          text NOT NULL CONSTRAINT webhooks_secret_length CHECK (length(secret) >= 32),
    queued_seq      bigint NOT NULL DEFAULT 0,
    updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE webhook_deliveries (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    site_id         bigint NOT NULL REFERENCES sites (id),
    event_row       bigint NOT NULL,  -- events.id (no key: see events)
    type            text NOT NULL,
    body            jsonb NOT NULL,
    attempts        integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz,  -- NULL: delivered, or given up
    delivered_at    timestamptz,
    last_status     integer,
    last_error      text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT webhook_deliveries_event_key UNIQUE (site_id, event_row)
);
CREATE INDEX webhook_deliveries_due_idx ON webhook_deliveries (next_attempt_at)
    WHERE next_attempt_at IS NOT NULL;
CREATE INDEX webhook_deliveries_site_idx ON webhook_deliveries (site_id, id);

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

-- Per site and day (in the site's time zone): the counts kept after the events of that
-- day lose their personal data and the stays are deleted.
CREATE TABLE daily_counts (
    site_id         bigint NOT NULL REFERENCES sites (id),
    day             date NOT NULL,
    entries         integer NOT NULL CONSTRAINT daily_counts_entries_nonnegative CHECK (entries >= 0),
    exits           integer NOT NULL CONSTRAINT daily_counts_exits_nonnegative CHECK (exits >= 0),
    denials         jsonb NOT NULL DEFAULT '{}'::jsonb
                    CONSTRAINT daily_counts_denials_object CHECK (jsonb_typeof(denials) = 'object'),
    peak_inside     integer NOT NULL CONSTRAINT daily_counts_peak_nonnegative CHECK (peak_inside >= 0),
    computed_at     timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT daily_counts_pkey PRIMARY KEY (site_id, day)
);

-- People who log in to the guard console. Passwords are kept only as argon2id
-- hashes; sessions only as the SHA-256 of their random cookie value.
CREATE TABLE console_accounts (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    username        text NOT NULL CONSTRAINT console_accounts_username_key UNIQUE
                    CONSTRAINT console_accounts_username_format CHECK (username ~ '^[a-z0-9][a-z0-9._-]{1,39}$'),
    password_hash   text NOT NULL CONSTRAINT console_accounts_password_hash_format CHECK (password_hash LIKE '$argon2id$%'),
    role            text NOT NULL CONSTRAINT console_accounts_role_valid
                    CHECK (role IN ('admin', 'guard', 'auditor', 'health')),
    site_id         bigint REFERENCES sites (id),
    full_name       text NOT NULL DEFAULT '' CONSTRAINT console_accounts_full_name_length CHECK (length(full_name) <= 120),
    failed_logins   integer NOT NULL DEFAULT 0,
    locked_until    timestamptz,
    last_login_at   timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now(),
    disabled_at     timestamptz
);

CREATE TABLE console_sessions (
    key_hash        bytea PRIMARY KEY CONSTRAINT console_sessions_key_hash_length CHECK (length(key_hash) = 32),
    account_id      bigint NOT NULL REFERENCES console_accounts (id),
    data            jsonb NOT NULL CONSTRAINT console_sessions_data_object CHECK (jsonb_typeof(data) = 'object'),
    created_at      timestamptz NOT NULL DEFAULT now(),
    expires_at      timestamptz NOT NULL
);
CREATE INDEX console_sessions_account_idx ON console_sessions (account_id);
CREATE INDEX console_sessions_expiry_idx ON console_sessions (expires_at);

-- Test results recorded by a health officer or imported from a lab: they outrank
-- what a person declares about their own tests.
CREATE TABLE official_tests (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    person_id       bigint NOT NULL REFERENCES people (id),
    kind            text NOT NULL CONSTRAINT official_tests_kind_valid CHECK (kind IN ('pcr', 'rapid')),
    taken_at        timestamptz NOT NULL,
    result          text NOT NULL CONSTRAINT official_tests_result_valid CHECK (result IN ('negative', 'positive')),
    source          text NOT NULL CONSTRAINT official_tests_source_length CHECK (length(source) BETWEEN 1 AND 200),
    recorded_by     text NOT NULL,
    recorded_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX official_tests_person_idx ON official_tests (person_id, taken_at DESC);

-- Confirmed cases (F0) recorded at a site, with the contacts their trace found when
-- the case was recorded (the list the officer acts on: service/health/cases.py).
CREATE TABLE health_cases (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    person_id       bigint NOT NULL REFERENCES people (id),
    site_id         bigint NOT NULL REFERENCES sites (id),
    onset_on        date NOT NULL,
    note            text NOT NULL DEFAULT '' CONSTRAINT health_cases_note_length CHECK (length(note) <= 1000),
    window_from     timestamptz NOT NULL,
    window_to       timestamptz NOT NULL,
    contacts        jsonb NOT NULL DEFAULT '[]'::jsonb
                    CONSTRAINT health_cases_contacts_array CHECK (jsonb_typeof(contacts) = 'array'),
    test_id         bigint REFERENCES official_tests (id),
    recorded_by     text NOT NULL,
    recorded_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX health_cases_site_idx ON health_cases (site_id, recorded_at);
CREATE INDEX health_cases_person_idx ON health_cases (person_id);

-- A person held at a site's doors for a health reason until cleared: a confirmed case,
-- a traced contact (cleared by an official negative taken at or after clear_after),
-- or travel to an area flagged after they declared. The door reads the active ones
-- by (person, site).
CREATE TABLE suspensions (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    person_id       bigint NOT NULL REFERENCES people (id),
    site_id         bigint NOT NULL REFERENCES sites (id),
    cause           text NOT NULL CONSTRAINT suspensions_cause_valid
                    CHECK (cause IN ('case_confirmed', 'contact_traced', 'area_flagged')),
    case_id         bigint REFERENCES health_cases (id),
    area_id         bigint,  -- flagged_areas.id (no key: an area may be removed, its suspensions stay)
    declaration_id  bigint REFERENCES declarations (id) ON DELETE SET NULL,  -- purged: service.retention.purge
    exposed_at      timestamptz,
    clear_after     timestamptz,
    created_by      text NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    cleared_at      timestamptz,
    cleared_by      text,
    cleared_note    text CONSTRAINT suspensions_cleared_note_length CHECK (length(cleared_note) <= 500),
    CONSTRAINT suspensions_clearance_complete CHECK ((cleared_at IS NULL) = (cleared_by IS NULL)),
    CONSTRAINT suspensions_cause_source CHECK (
        (cause = 'area_flagged') = (area_id IS NOT NULL)
        AND (cause = 'area_flagged' OR case_id IS NOT NULL))
);
CREATE INDEX suspensions_active_idx ON suspensions (person_id, site_id) WHERE cleared_at IS NULL;
CREATE UNIQUE INDEX suspensions_active_key
    ON suspensions (person_id, site_id, cause, coalesce(case_id, 0), coalesce(area_id, 0))
    WHERE cleared_at IS NULL;
CREATE INDEX suspensions_site_idx ON suspensions (site_id, cause) WHERE cleared_at IS NULL;

-- An area name as the declaration rules compare them (service.declarations.policy.area_key): case,
-- spacing and Vietnamese diacritics ignored, đ counted as d. Vietnamese marks are all
-- in the combining block U+0300..U+036F, which NFD separates from their letters.
CREATE FUNCTION area_key(area text) RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN btrim(regexp_replace(regexp_replace(normalize(replace(lower(area), 'đ', 'd'), NFD),
                                           '[\u0300-\u036f]', '', 'g'), '\s+', ' ', 'g'));

-- The area keys of a declaration's travel, for the GIN index that lets a flagged area
-- find the declarations that name it (service/health/rescreen.py) without reading all.
CREATE FUNCTION travel_area_keys(answers jsonb) RETURNS text[] LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN ARRAY(SELECT area_key(t.area)
             FROM jsonb_array_elements_text(CASE WHEN jsonb_typeof(answers -> 'travel_areas') = 'array'
                                                 THEN answers -> 'travel_areas' ELSE '[]'::jsonb END)
                  AS t (area));
CREATE INDEX declarations_travel_keys_idx ON declarations USING gin (travel_area_keys(answers))
    WHERE superseded_at IS NULL;

-- The check-in batch in four round trips (see service/checkin/batch.py).
-- Read all a batch is decided on, chain heads included, in one snapshot (the RETURN
-- statement): a write from these heads is refused if anything was appended since.
-- With lock_chains, the chains are locked first, so that the read includes all that
-- their previous holder committed (each statement of a VOLATILE function takes its own
-- snapshot) and the write cannot be refused.
-- The last sign of a person during a stay: their last scan at the site (any gate, any
-- verdict) or a guard's "seen", within [from_at, to_at]; from_at (the entry) if none.
CREATE FUNCTION stay_last_evidence(person bigint, site bigint, from_at timestamptz, to_at timestamptz)
RETURNS timestamptz LANGUAGE sql STABLE AS $$
    SELECT coalesce(max(e.occurred_at), from_at) FROM events e
    WHERE e.person_id = person AND e.site_id = site
      AND e.occurred_at >= from_at AND e.occurred_at <= to_at
      AND (e.kind = 'scan' OR (e.kind = 'presence_confirmed' AND e.detail->>'status' = 'seen'))
$$;

CREATE FUNCTION checkin_batch_state(gate_ids bigint[], event_ids uuid[], pass_ids uuid[],
                                    recent_window interval, lock_chains boolean)
RETURNS jsonb LANGUAGE plpgsql
-- Every lookup is by key: one plan fits all batches, and planning each call anew (the
-- default, for array parameters) cost 40 % of the call (measured: 2.7 -> 1.9 ms a scan).
SET plan_cache_mode = force_generic_plan AS $$
DECLARE
    batch_sites bigint[];
    batch_people bigint[];
    recent_since timestamptz;
BEGIN
    SELECT array_agg(DISTINCT g.site_id) INTO batch_sites FROM gates g WHERE g.id = ANY (gate_ids);
    IF lock_chains THEN
        PERFORM 1 FROM event_chains WHERE chain_id = ANY (batch_sites) ORDER BY chain_id FOR UPDATE;
    END IF;
    SELECT array_agg(DISTINCT p.person_id) INTO batch_people FROM passes p WHERE p.id = ANY (pass_ids);
    recent_since := clock_timestamp() - recent_window;  -- a value, so that it bounds the index scan
    RETURN jsonb_build_object(
        'heads', (SELECT coalesce(jsonb_agg(jsonb_build_array(chain_id, last_seq, encode(last_hash, 'hex'))), '[]')
                  FROM event_chains WHERE chain_id = ANY (batch_sites)),
        'gates', (SELECT coalesce(jsonb_agg(jsonb_build_array(g.id, g.site_id, g.direction, g.opening_hours,
                                                              s.timezone, s.capacity, s.checkin_rules::text)), '[]')
                  FROM gates g JOIN sites s ON s.id = g.site_id WHERE g.id = ANY (gate_ids)),
        'existing', (SELECT coalesce(jsonb_agg(jsonb_build_object(
                         'id', id, 'event_id', event_id, 'site_id', site_id, 'gate_id', gate_id,
                         'person_id', person_id, 'pass_id', pass_id, 'decision', decision,
                         'reason', reason, 'direction', direction, 'detail', detail)), '[]')
                     FROM events WHERE event_id = ANY (event_ids)),
        'passes', (SELECT coalesce(jsonb_agg(jsonb_build_array(
                       p.id, p.person_id, p.site_id, p.revoked_reason, pe.full_name, d.status, d.valid_until,
                       d.id IS NOT DISTINCT FROM p.declaration_id,
                       EXISTS (SELECT 1 FROM deny_list dl
                               WHERE dl.person_id = p.person_id AND dl.removed_at IS NULL
                                 AND (dl.site_id IS NULL OR dl.site_id = p.site_id)),
                       -- The gravest active health suspension, by key (suspensions_active_idx).
                       (SELECT su.cause FROM suspensions su
                        WHERE su.person_id = p.person_id AND su.site_id = p.site_id AND su.cleared_at IS NULL
                        ORDER BY array_position(ARRAY['case_confirmed', 'contact_traced', 'area_flagged'], su.cause)
                        LIMIT 1))), '[]')
                   FROM passes p
                   JOIN people pe ON pe.id = p.person_id
                   LEFT JOIN declarations d
                          ON d.person_id = p.person_id AND d.site_id = p.site_id AND d.superseded_at IS NULL
                   WHERE p.id = ANY (pass_ids)),
        -- One probe of the open-stay key per site and person: as a filter on the
        -- site's open stays instead, the cost grew with the number of people inside.
        -- (LIMIT 1, which the key implies, keeps the planner to that probe.)
        'stays', (SELECT coalesce(jsonb_agg(jsonb_build_array(pr.id, s.site_id, p.person_id, pr.entered_at)), '[]')
                  FROM unnest(batch_sites) AS s (site_id)
                  CROSS JOIN unnest(batch_people) AS p (person_id)
                  CROSS JOIN LATERAL (SELECT o.id, o.entered_at FROM presence o
                                      WHERE o.site_id = s.site_id AND o.person_id = p.person_id
                                        AND o.exited_at IS NULL LIMIT 1) AS pr),
        -- The people likely inside, as the roll call counts them (service/door/roll_call.py):
        -- every open stay but those silent (no scan at the site, no guard's "seen") for
        -- the site's silent_after_minutes (240: CheckinRules' default). Counting grows
        -- with the people inside, and only a capacity needs it: the sites without one
        -- are left out before anything is counted, and the silent are looked for only
        -- when the open stays alone could fill the site in this batch.
        'occupancy', (SELECT coalesce(jsonb_object_agg(s.id, CASE
                          WHEN o.open + cardinality(event_ids) <= s.capacity THEN o.open
                          ELSE o.open - (SELECT count(*) FROM presence pr
                                         WHERE pr.site_id = s.id AND pr.exited_at IS NULL
                                           AND pr.entered_at <= o.quiet_since
                                           AND NOT EXISTS (
                                               SELECT 1 FROM events e
                                               WHERE e.person_id = pr.person_id AND e.site_id = s.id
                                                 AND e.occurred_at > o.quiet_since
                                                 AND e.occurred_at >= pr.entered_at
                                                 AND (e.kind = 'scan' OR (e.kind = 'presence_confirmed'
                                                                          AND e.detail->>'status' = 'seen'))))
                          END), '{}')
                      FROM sites s
                      CROSS JOIN LATERAL (
                          SELECT (SELECT count(*) FROM presence pr
                                  WHERE pr.site_id = s.id AND pr.exited_at IS NULL) AS open,
                                 clock_timestamp() - make_interval(mins =>
                                     coalesce((s.checkin_rules->>'silent_after_minutes')::int, 240))
                                     AS quiet_since) AS o
                      WHERE s.id = ANY (batch_sites) AND s.capacity IS NOT NULL),
        -- The last allowed use of each pass (the shared-pass check).
        'recent', (SELECT coalesce(jsonb_agg(jsonb_build_array(pass_id, gate_id, direction, occurred_at)), '[]')
                   FROM (SELECT DISTINCT ON (pass_id) pass_id, gate_id, direction, occurred_at FROM events
                         WHERE pass_id = ANY (pass_ids) AND occurred_at > recent_since
                           AND kind = 'scan' AND decision = 'allow'
                         ORDER BY pass_id, occurred_at DESC) AS r)
    );
END
$$;

-- Append events chained by the caller, and move the chain heads to the last of them.
-- Each event comes as its canonical record, the very bytes its digest was taken of
-- (service/events/log.py), so what is stored is by construction what was hashed. A chain
-- that moved since the caller read its head is never forked: serialization_failure,
-- and the caller decides again from fresh state.
CREATE FUNCTION append_chained_events(records jsonb, chain_ids bigint[], seqs bigint[],
                                      digests bytea[], prev_hashes bytea[], hashes bytea[])
RETURNS TABLE (id bigint, chain_id bigint, seq bigint) LANGUAGE plpgsql AS $$
#variable_conflict use_column
BEGIN
    PERFORM 1 FROM event_chains WHERE chain_id = ANY (chain_ids) ORDER BY chain_id FOR UPDATE;
    IF EXISTS (SELECT 1
               FROM (SELECT DISTINCT ON (u.chain_id) u.chain_id, u.seq, u.prev_hash
                     FROM unnest(chain_ids, seqs, prev_hashes) AS u (chain_id, seq, prev_hash)
                     ORDER BY u.chain_id, u.seq) AS f
               JOIN event_chains c ON c.chain_id = f.chain_id
               WHERE c.last_seq <> f.seq - 1 OR c.last_hash <> f.prev_hash) THEN
        RAISE EXCEPTION 'an event chain moved since its head was read'
              USING ERRCODE = 'serialization_failure';
    END IF;
    RETURN QUERY
    INSERT INTO events AS e (chain_id, seq, kind, occurred_at, site_id, gate_id, person_id, pass_id,
                             event_id, direction, decision, reason, actor, detail, digest, prev_hash, hash)
    SELECT u.chain_id, u.seq, r ->> 'kind', (r ->> 'occurred_at')::timestamptz, (r ->> 'site_id')::bigint,
           (r ->> 'gate_id')::bigint, (r ->> 'person_id')::bigint, (r ->> 'pass_id')::uuid,
           (r ->> 'event_id')::uuid, r ->> 'direction', r ->> 'decision', r ->> 'reason', r ->> 'actor',
           r -> 'detail', u.digest, u.prev_hash, u.hash
    FROM unnest(chain_ids, seqs, digests, prev_hashes, hashes) WITH ORDINALITY
         AS u (chain_id, seq, digest, prev_hash, hash, n),
         LATERAL (SELECT records -> (u.n::int - 1) AS r) AS j
    RETURNING e.id, e.chain_id, e.seq;
    UPDATE event_chains AS c SET last_seq = h.seq, last_hash = h.hash
    FROM (SELECT DISTINCT ON (u.chain_id) u.chain_id, u.seq, u.hash
          FROM unnest(chain_ids, seqs, hashes) AS u (chain_id, seq, hash)
          ORDER BY u.chain_id, u.seq DESC) AS h
    WHERE c.chain_id = h.chain_id;
END
$$;

-- Write a decided batch: its events, then what they do to presence. The order matters:
-- stays end before new ones begin (a person may leave and come back in one batch, and
-- at most one stay per person may be open), which one statement with several
-- data-modifying CTEs would not guarantee. Presence rows name their events by seq in
-- the chain of their site.
CREATE FUNCTION checkin_batch_write(
    records jsonb, chain_ids bigint[], seqs bigint[], digests bytea[], prev_hashes bytea[],
    hashes bytea[], undone_entries bigint[], reopened bigint[],
    closed_ids bigint[], closed_at timestamptz[], closed_gates bigint[], closed_seqs bigint[],
    new_sites bigint[], new_people bigint[], new_entered timestamptz[], new_entry_gates bigint[],
    new_entry_seqs bigint[], new_exited timestamptz[], new_exit_gates bigint[], new_exit_seqs bigint[])
RETURNS void LANGUAGE plpgsql
SET plan_cache_mode = force_generic_plan AS $$
BEGIN
    PERFORM 1 FROM append_chained_events(records, chain_ids, seqs, digests, prev_hashes, hashes);
    IF cardinality(undone_entries) > 0 THEN
        DELETE FROM presence WHERE entry_event = ANY (undone_entries);
    END IF;
    IF cardinality(reopened) > 0 THEN
        UPDATE presence SET exited_at = NULL, exit_gate_id = NULL, exit_event = NULL, exit_kind = NULL,
                            last_evidence_at = NULL
        WHERE id = ANY (reopened);
    END IF;
    IF cardinality(closed_ids) > 0 THEN
        UPDATE presence AS p
        SET exited_at = greatest(u.exited_at, p.entered_at), exit_gate_id = u.gate_id,
            exit_event = e.id,
            -- An automatic check-out (the daily reset at the door) is an estimated end.
            exit_kind = CASE WHEN e.kind = 'auto_exit' THEN 'auto' ELSE 'scan' END,
            last_evidence_at = CASE WHEN e.kind = 'auto_exit' THEN
                stay_last_evidence(p.person_id, p.site_id, p.entered_at, greatest(u.exited_at, p.entered_at)) END
        FROM unnest(closed_ids, closed_at, closed_gates, closed_seqs) AS u (id, exited_at, gate_id, seq)
        JOIN events e ON e.seq = u.seq
        WHERE p.id = u.id AND p.exited_at IS NULL AND e.chain_id = p.site_id;
    END IF;
    IF cardinality(new_sites) > 0 THEN
        INSERT INTO presence (site_id, person_id, entered_at, entry_gate_id, entry_event,
                              exited_at, exit_gate_id, exit_event, exit_kind)
        SELECT u.site_id, u.person_id, u.entered_at, u.entry_gate, entry.id,
               u.exited_at, u.exit_gate, exit.id, CASE WHEN u.exited_at IS NOT NULL THEN 'scan' END
        FROM unnest(new_sites, new_people, new_entered, new_entry_gates, new_entry_seqs,
                    new_exited, new_exit_gates, new_exit_seqs)
             AS u (site_id, person_id, entered_at, entry_gate, entry_seq, exited_at, exit_gate, exit_seq)
        JOIN events entry ON entry.chain_id = u.site_id AND entry.seq = u.entry_seq
        LEFT JOIN events exit ON exit.chain_id = u.site_id AND exit.seq = u.exit_seq;
    END IF;
END
$$;

-- The automatic check-out sweep in batches (service/door/auto_checkout.py).
-- What the door's screen may show of a name (checkin_core.reasons.short_name):
-- "Nguyễn Văn An" -> "N. V. An".
CREATE FUNCTION short_name(full_name text) RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN nullif(regexp_replace(regexp_replace(full_name, '^\s+|\s+$', '', 'g'), '(\S)\S*\s+', '\1. ', 'g'), '');

-- A time as service.events.log.canonical() writes it: UTC, microseconds, +00:00.
CREATE FUNCTION canonical_time(at timestamptz) RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"');

-- One batch of the sweep at a site: the open stays `ids` (in entry order) are closed at
-- the earliest of their rules (auto_checkout.closure()), each with an auto_exit event
-- chained into the site's log: the canonical record of auto_checkout.auto_exit_event,
-- built here, so chain verification recomputes the same digest. `resets`: the site's
-- `at` times from the first after the oldest open stay up to now, sorted.
-- Everything but the writes is done before the site's chain is locked, so a door
-- waits for the writes only; the commit need not wait for the disk (a lost batch is
-- redone identically by the next sweep, and any later commit flushes it).
CREATE FUNCTION auto_checkout_batch(site bigint, ids bigint[], now_at timestamptz,
                                    resets timestamptz[], at_value text, after_minutes integer,
                                    departures boolean)
RETURNS TABLE (closed bigint, last_seq bigint, rules jsonb) LANGUAGE plpgsql
-- Every stay is found by its key: a hash join would read the whole table per batch. One
-- plan fits every batch: planning each call anew (the default with array parameters)
-- cost a fifth of the sweep.
SET enable_hashjoin = off SET enable_mergejoin = off SET plan_cache_mode = force_generic_plan AS $$
#variable_conflict use_column
DECLARE
    -- The stays due, in entry order, and what closing each one writes.
    stay_ids bigint[];
    persons bigint[];
    ends timestamptz[];
    evidence timestamptz[];
    fired text[];
    details text[];
    digests bytea[];
    event_rows bigint[];  -- the row ids their events will have, taken in entry order
    kept bigint[];  -- the places in those arrays of the stays still open when locked
    prevs bytea[] := '{}';
    hashes bytea[] := '{}';
    head_seq bigint;
    head bytea;
BEGIN
    PERFORM set_config('synchronous_commit', 'off', true);
    -- Each step is materialized: inlined, the planner copies an expression into every
    -- place that uses it, and the rule, the end and the detail were computed several
    -- times a stay (the read took twice as long).
    WITH stays AS MATERIALIZED (
        SELECT p.id, p.person_id, p.entered_at, pe.full_name, u.n,
               resets[width_bucket(p.entered_at, resets) + 1] AS at_end,
               p.entered_at + make_interval(mins => after_minutes) AS after_end,
               CASE WHEN departures AND pe.kind = 'visitor' THEN
                   (SELECT x.departure FROM declarations d
                    CROSS JOIN LATERAL (SELECT (d.answers->>'expected_departure')::timestamptz AS departure) AS x
                    WHERE d.person_id = p.person_id AND d.site_id = p.site_id
                      AND d.superseded_at IS NULL AND x.departure > p.entered_at) END AS dep_end
        FROM unnest(ids) WITH ORDINALITY AS u (id, n)
        JOIN presence p ON p.id = u.id AND p.exited_at IS NULL AND p.site_id = site
        JOIN people pe ON pe.id = p.person_id
    ), ruled AS MATERIALIZED (  -- the earliest rule, in closure()'s order when two tie
        SELECT s.id, s.person_id, s.entered_at, s.full_name, s.n, CASE
            WHEN at_end IS NOT NULL AND at_end <= coalesce(after_end, at_end)
                 AND at_end <= coalesce(dep_end, at_end) THEN 'at'
            WHEN after_end IS NOT NULL AND after_end <= coalesce(dep_end, after_end) THEN 'after_minutes'
            WHEN dep_end IS NOT NULL THEN 'expected_departure' END AS rule,
            least(at_end, after_end, dep_end) AS end_at
        FROM stays s
    ), records AS MATERIALIZED (
        SELECT r.*, '{"entered_at":"' || canonical_time(r.entered_at)
               || '","estimated":true,"name":' || coalesce(to_json(short_name(r.full_name))::text, 'null')
               || ',"rule":"' || r.rule || '","rule_value":' || CASE r.rule
                   WHEN 'at' THEN to_json(at_value)::text WHEN 'after_minutes' THEN after_minutes::text
                   ELSE 'null' END || '}' AS detail,
               -- stay_last_evidence(), written out: a function call per stay cost more
               coalesce((SELECT max(e.occurred_at) FROM events e
                         WHERE e.person_id = r.person_id AND e.site_id = site
                           AND e.occurred_at >= r.entered_at AND e.occurred_at <= r.end_at
                           AND (e.kind = 'scan' OR (e.kind = 'presence_confirmed'
                                                    AND e.detail->>'status' = 'seen'))),
                        r.entered_at) AS last_evidence
        FROM ruled r
        WHERE r.end_at <= now_at
    )
    SELECT array_agg(id ORDER BY n), array_agg(person_id ORDER BY n), array_agg(end_at ORDER BY n),
           array_agg(last_evidence ORDER BY n), array_agg(rule ORDER BY n), array_agg(detail ORDER BY n),
           array_agg(sha256(convert_to('{"actor":"service:auto_checkout","decision":null,"detail":'
               || detail || ',"direction":"out","event_id":null,"gate_id":null,"kind":"auto_exit",'
               || '"occurred_at":"' || canonical_time(end_at) || '","pass_id":null,"person_id":'
               || person_id || ',"reason":null,"site_id":' || site || '}', 'UTF8')) ORDER BY n)
    INTO stay_ids, persons, ends, evidence, fired, details, digests
    FROM records;
    IF stay_ids IS NULL THEN
        RETURN QUERY SELECT 0::bigint, NULL::bigint, '{}'::jsonb;
        RETURN;
    END IF;
    SELECT c.last_seq, c.last_hash INTO head_seq, head
    FROM event_chains c WHERE c.chain_id = site FOR UPDATE;
    -- Taken under the lock, so a chain's ids rise with its seqs (exports page by id); a
    -- stay a door closed meanwhile leaves a gap in the ids only.
    event_rows := ARRAY(SELECT nextval(pg_get_serial_sequence('events', 'id'))
                        FROM generate_series(1, cardinality(stay_ids)));
    -- Only the stays still open are closed: a door may have closed one since they were read.
    WITH ended AS (
        UPDATE presence AS p
        SET exited_at = l.end_at, exit_gate_id = NULL, exit_event = l.event_row, exit_kind = 'auto',
            last_evidence_at = l.last_evidence
        FROM unnest(stay_ids, ends, evidence, event_rows) WITH ORDINALITY
             AS l (id, end_at, last_evidence, event_row, n)
        WHERE p.id = l.id AND p.exited_at IS NULL
        RETURNING l.n
    )
    SELECT coalesce(array_agg(n ORDER BY n), '{}') INTO kept FROM ended;
    FOR i IN 1 .. cardinality(kept) LOOP  -- the chain: service/events/log.py link()
        prevs[i] := head;
        head := sha256(head || digests[kept[i]]);
        hashes[i] := head;
    END LOOP;
    INSERT INTO events (id, chain_id, seq, kind, occurred_at, site_id, person_id, direction,
                        actor, detail, digest, prev_hash, hash)
    OVERRIDING SYSTEM VALUE
    SELECT event_rows[k.n], site, head_seq + k.i, 'auto_exit', ends[k.n], site, persons[k.n], 'out',
           'service:auto_checkout', details[k.n]::jsonb, digests[k.n], prevs[k.i], hashes[k.i]
    FROM unnest(kept) WITH ORDINALITY AS k (n, i);
    IF cardinality(kept) > 0 THEN
        UPDATE event_chains AS c SET last_seq = head_seq + cardinality(kept), last_hash = head
        WHERE c.chain_id = site;
    END IF;
    RETURN QUERY
    SELECT cardinality(kept)::bigint, CASE WHEN cardinality(kept) > 0 THEN head_seq + cardinality(kept) END,
           (SELECT coalesce(jsonb_object_agg(g.rule, g.n), '{}') FROM
                (SELECT fired[k.n] AS rule, count(*) AS n FROM unnest(kept) AS k (n) GROUP BY 1) AS g);
END
$$;
