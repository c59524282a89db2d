-- 0007: a batch of scans in two round trips (state, then write and commit) instead of
-- ten. Under load every round trip waits its turn in the service's event loop; a chain
-- lock held across them bounds the decisions/s of a site, so the batch reads without
-- it, and the write takes it only to check that nothing moved meanwhile.

-- Read all a batch is decided on, chain heads included, in one snapshot (the RETURN
-- statement): a write from these heads is refused if anything was appended since.
-- With lock_chains, the chains are locked first, so that the read includes all that
-- their previous holder committed (each statement of a VOLATILE function takes its own
-- snapshot) and the write cannot be refused.
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
                                 AND (dl.site_id IS NULL OR dl.site_id = p.site_id)))), '[]')
                   FROM passes p
                   JOIN people pe ON pe.id = p.person_id
                   LEFT JOIN declarations d
                          ON d.person_id = p.person_id AND d.site_id = p.site_id AND d.superseded_at IS NULL
                   WHERE p.id = ANY (pass_ids)),
        'stays', (SELECT coalesce(jsonb_agg(jsonb_build_array(id, site_id, person_id)), '[]')
                  FROM presence
                  WHERE person_id = ANY (batch_people) AND site_id = ANY (batch_sites) AND exited_at IS NULL),
        -- Counting is the costly part, and only a capacity needs it.
        'occupancy', (SELECT coalesce(jsonb_object_agg(c.site_id, c.inside), '{}')
                      FROM (SELECT pr.site_id, count(*) AS inside FROM presence pr
                            JOIN sites s ON s.id = pr.site_id AND s.capacity IS NOT NULL
                            WHERE pr.site_id = ANY (batch_sites) AND pr.exited_at IS NULL
                            GROUP BY pr.site_id) AS c),
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
        UPDATE presence SET exited_at = NULL, exit_gate_id = NULL, exit_event = NULL, exit_kind = NULL
        WHERE id = ANY (reopened);
    END IF;
    IF cardinality(closed_ids) > 0 THEN
        UPDATE presence AS p
        SET exited_at = greatest(u.exited_at, p.entered_at), exit_gate_id = u.gate_id,
            exit_event = e.id, exit_kind = 'scan'
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
