-- 0012: the health officer's desk (issue 19). A `health` role for tokens and console
-- accounts; official test results, confirmed cases and the suspensions they cause;
-- and the door reads a person's active suspension with their pass (by key, like the
-- deny list), so a suspension holds from the next scan on every instance.
ALTER TABLE api_tokens DROP CONSTRAINT api_tokens_role_valid,
    ADD CONSTRAINT api_tokens_role_valid CHECK (role IN ('admin', 'guard', 'auditor', 'kiosk', 'health'));
ALTER TABLE console_accounts DROP CONSTRAINT console_accounts_role_valid,
    ADD CONSTRAINT console_accounts_role_valid CHECK (role IN ('admin', 'guard', 'auditor', 'health'));
ALTER TABLE events DROP CONSTRAINT events_kind_valid,
    ADD CONSTRAINT events_kind_valid CHECK (kind IN (
        'scan', 'override', 'manual_exit', 'deny_list_add', 'deny_list_remove',
        'pass_revoked', 'declaration_reviewed', 'admin', 'export', 'trace', 'purge',
        'door_correction', 'login_failed', 'login_locked', 'login_burst',
        'official_test', 'health_case', 'suspension', 'suspension_cleared'));

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

CREATE OR REPLACE FUNCTION checkin_batch_state(gate_ids bigint[], event_ids uuid[], pass_ids uuid[],
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
        'stays', (SELECT coalesce(jsonb_agg(jsonb_build_array(pr.id, s.site_id, p.person_id)), '[]')
                  FROM unnest(batch_sites) AS s (site_id)
                  CROSS JOIN unnest(batch_people) AS p (person_id)
                  CROSS JOIN LATERAL (SELECT o.id FROM presence o
                                      WHERE o.site_id = s.site_id AND o.person_id = p.person_id
                                        AND o.exited_at IS NULL LIMIT 1) AS pr),
        -- Counting grows with the people inside, and only a capacity needs it: the
        -- sites without one are left out before anything is counted.
        'occupancy', (SELECT coalesce(jsonb_object_agg(s.id, (SELECT count(*) FROM presence pr
                                                              WHERE pr.site_id = s.id AND pr.exited_at IS NULL)), '{}')
                      FROM sites s WHERE s.id = ANY (batch_sites) AND s.capacity IS NOT NULL),
        -- The last allowed use of each pass (the shared-pass check).
        'recent', (SELECT coalesce(jsonb_agg(jsonb_build_array(pass_id, gate_id, direction, occurred_at)), '[]')
                   FROM (SELECT DISTINCT ON (pass_id) pass_id, gate_id, direction, occurred_at FROM events
                         WHERE pass_id = ANY (pass_ids) AND occurred_at > recent_since
                           AND kind = 'scan' AND decision = 'allow'
                         ORDER BY pass_id, occurred_at DESC) AS r)
    );
END
$$;
