-- 0019, issue 22: the door's capacity check (site_full) counts the people likely inside,
-- as the roll call does: an open stay silent longer than the site's silent_after_minutes
-- no longer fills the site.
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
