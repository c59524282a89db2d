-- 0017, issue 22: the automatic check-out sweep closes a batch of stays in one call
-- (service/door/auto_checkout.py): the auto_exit events built, hashed and chained in SQL.

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
-- Every stay is found by its key: a hash join would read the whole table per batch.
SET enable_hashjoin = off SET enable_mergejoin = off AS $$
#variable_conflict use_column
DECLARE
    stay_ids bigint[];
    persons bigint[];
    ends timestamptz[];
    evidence timestamptz[];
    fired text[];
    details text[];
    digests bytea[];
    kept bigint[];  -- the places in the arrays above of the stays still open
    hashes bytea[] := '{}';
    head_seq bigint;
    head bytea;
    first_prev bytea;
BEGIN
    PERFORM set_config('synchronous_commit', 'off', true);
    WITH stays AS (
        SELECT p.id, p.person_id, p.entered_at, pe.full_name, u.n,
               resets[width_bucket(p.entered_at, resets) + 1] AS at_end,
               p.entered_at + make_interval(mins => after_minutes) AS after_end,
               CASE WHEN departures AND pe.kind = 'visitor' THEN
                   (SELECT (d.answers->>'expected_departure')::timestamptz FROM declarations d
                    WHERE d.person_id = p.person_id AND d.site_id = p.site_id
                      AND d.superseded_at IS NULL) END AS departure
        FROM unnest(ids) WITH ORDINALITY AS u (id, n)
        JOIN presence p ON p.id = u.id AND p.exited_at IS NULL AND p.site_id = site
        JOIN people pe ON pe.id = p.person_id
    ), ruled AS (  -- the earliest rule, in closure()'s order when two tie
        SELECT s.*, CASE
            WHEN at_end IS NOT NULL AND at_end <= coalesce(after_end, at_end)
                 AND at_end <= coalesce(dep_end, at_end) THEN 'at'
            WHEN after_end IS NOT NULL AND after_end <= coalesce(dep_end, after_end) THEN 'after_minutes'
            WHEN dep_end IS NOT NULL THEN 'expected_departure' END AS rule
        FROM (SELECT s.*, CASE WHEN s.departure > s.entered_at THEN s.departure END AS dep_end
              FROM stays s) AS s
    ), due AS (
        SELECT r.*, e.end_at
        FROM ruled r
        CROSS JOIN LATERAL (SELECT CASE r.rule WHEN 'at' THEN r.at_end WHEN 'after_minutes' THEN r.after_end
                                   ELSE r.dep_end END AS end_at) AS e
        WHERE e.end_at <= now_at
    ), records AS (
        SELECT d.*, x.detail, sha256(convert_to('{"actor":"service:auto_checkout","decision":null,"detail":'
               || x.detail || ',"direction":"out","event_id":null,"gate_id":null,"kind":"auto_exit",'
               || '"occurred_at":"' || canonical_time(d.end_at) || '","pass_id":null,"person_id":'
               || d.person_id || ',"reason":null,"site_id":' || site || '}', 'UTF8')) AS digest,
               -- stay_last_evidence(), written out: a function call per stay cost more
               coalesce((SELECT max(e.occurred_at) FROM events e
                         WHERE e.person_id = d.person_id AND e.site_id = site
                           AND e.occurred_at >= d.entered_at AND e.occurred_at <= d.end_at
                           AND (e.kind = 'scan' OR (e.kind = 'presence_confirmed'
                                                    AND e.detail->>'status' = 'seen'))),
                        d.entered_at) AS last_evidence
        FROM due d
        CROSS JOIN LATERAL (SELECT '{"entered_at":"' || canonical_time(d.entered_at)
               || '","estimated":true,"name":' || coalesce(to_json(short_name(d.full_name))::text, 'null')
               || ',"rule":"' || d.rule || '","rule_value":' || CASE d.rule
                   WHEN 'at' THEN to_json(at_value)::text WHEN 'after_minutes' THEN after_minutes::text
                   ELSE 'null' END || '}' AS detail) AS x
    )
    SELECT array_agg(id ORDER BY n), array_agg(person_id ORDER BY n), array_agg(end_at ORDER BY n),
           array_agg(last_evidence ORDER BY n), array_agg(rule ORDER BY n), array_agg(detail ORDER BY n),
           array_agg(digest ORDER BY n)
    INTO stay_ids, persons, ends, evidence, fired, details, digests
    FROM records;
    IF stay_ids IS NULL THEN
        RETURN QUERY SELECT 0::bigint, NULL::bigint, '{}'::jsonb;
        RETURN;
    END IF;

    SELECT last_seq, last_hash, last_hash INTO head_seq, head, first_prev
    FROM event_chains WHERE chain_id = site FOR UPDATE;
    -- Still open: a door may have closed one since they were read.
    SELECT coalesce(array_agg(u.n ORDER BY u.n), '{}') INTO kept
    FROM unnest(stay_ids) WITH ORDINALITY AS u (id, n)
    JOIN presence p ON p.id = u.id AND p.exited_at IS NULL;
    FOR i IN 1 .. cardinality(kept) LOOP  -- the chain: service/events/log.py link()
        head := sha256(head || digests[kept[i]]);
        hashes[i] := head;
    END LOOP;
    RETURN QUERY
    WITH linked AS (
        SELECT stay_ids[k.n] AS id, persons[k.n] AS person_id, ends[k.n] AS end_at,
               evidence[k.n] AS last_evidence, fired[k.n] AS rule, details[k.n] AS detail,
               digests[k.n] AS digest, head_seq + k.i AS seq, hashes[k.i] AS hash,
               coalesce(hashes[k.i - 1], first_prev) AS prev_hash,
               -- The event's row id, taken here, so the stay names it without a join
               -- on what the INSERT returns.
               nextval(pg_get_serial_sequence('events', 'id')) AS event_row
        FROM unnest(kept) WITH ORDINALITY AS k (n, i)
    ), appended AS (
        INSERT INTO events (id, chain_id, seq, kind, occurred_at, site_id, person_id, direction,
                            actor, detail, digest, prev_hash, hash)
        OVERRIDING SYSTEM VALUE
        SELECT l.event_row, site, l.seq, 'auto_exit', l.end_at, site, l.person_id, 'out',
               'service:auto_checkout', l.detail::jsonb, l.digest, l.prev_hash, l.hash
        FROM linked l
    ), ended AS (
        UPDATE presence AS p
        SET exited_at = l.end_at, exit_gate_id = NULL, exit_event = l.event_row, exit_kind = 'auto',
            last_evidence_at = l.last_evidence
        FROM linked l
        WHERE p.id = l.id
        RETURNING l.rule
    ), moved AS (
        UPDATE event_chains AS c SET last_seq = t.seq, last_hash = t.hash
        FROM (SELECT seq, hash FROM linked ORDER BY seq DESC LIMIT 1) AS t
        WHERE c.chain_id = site
        RETURNING c.last_seq
    )
    SELECT (SELECT count(*) FROM ended), (SELECT m.last_seq FROM moved m),
           (SELECT coalesce(jsonb_object_agg(g.rule, g.n), '{}') FROM
                (SELECT rule, count(*) AS n FROM ended GROUP BY rule) AS g);
END
$$;
