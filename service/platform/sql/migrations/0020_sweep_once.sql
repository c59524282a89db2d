-- 0020, issue 22: the sweep's batch reads each stay once and plans once (each step
-- materialized, a generic plan), and closes the stays before it chains their events, so
-- the check that a door has not closed one first is the UPDATE itself.
CREATE OR REPLACE FUNCTION auto_checkout_batch(site bigint, ids bigint[], now_at timestamptz,
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
