-- The ceilings' helper, loaded only into the ceilings' database: from what
-- checkin_batch_state returned, build the arguments of checkin_batch_write as the
-- service does in Python (a scan of someone inside is an exit, else an entry; the
-- events chained to the head), and make the call. pgbench thus makes the service's two
-- calls, with the same reads and writes in PostgreSQL.
CREATE FUNCTION bench_checkin_write(state jsonb, gate bigint, people bigint[]) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    site bigint := (state -> 'gates' -> 0 ->> 1)::bigint;
    seq bigint := (state -> 'heads' -> 0 ->> 1)::bigint;
    prev bytea := decode(state -> 'heads' -> 0 ->> 2, 'hex');
    at timestamptz := clock_timestamp();
    open_stays jsonb;
    pass_of jsonb;
    person bigint;
    stay bigint;
    record jsonb;
    records jsonb := '[]';
    seqs bigint[] := '{}';
    digests bytea[] := '{}';
    prevs bytea[] := '{}';
    hashes bytea[] := '{}';
    closed_ids bigint[] := '{}';
    closed_seqs bigint[] := '{}';
    new_people bigint[] := '{}';
    new_seqs bigint[] := '{}';
BEGIN
    SELECT coalesce(jsonb_object_agg(s ->> 2, s -> 0), '{}') INTO open_stays
    FROM jsonb_array_elements(state -> 'stays') AS s;
    SELECT coalesce(jsonb_object_agg(p ->> 1, p -> 0), '{}') INTO pass_of
    FROM jsonb_array_elements(state -> 'passes') AS p;
    FOREACH person IN ARRAY people LOOP
        seq := seq + 1;
        stay := (open_stays ->> person::text)::bigint;
        record := jsonb_build_object(
            'kind', 'scan', 'actor', 'kiosk:bench', 'occurred_at', at, 'site_id', site,
            'gate_id', gate, 'person_id', person, 'pass_id', pass_of -> person::text,
            'event_id', gen_random_uuid(), 'direction', CASE WHEN stay IS NULL THEN 'in' ELSE 'out' END,
            'decision', 'allow', 'reason', CASE WHEN stay IS NULL THEN 'welcome' ELSE 'goodbye' END,
            'detail', jsonb_build_object('name', 'N. V. B.', 'warnings', '[]'::jsonb));
        records := records || jsonb_build_array(record);
        seqs := seqs || seq;
        digests := digests || sha256(convert_to(record::text, 'UTF8'));
        prevs := prevs || prev;
        prev := sha256(prev || digests[cardinality(digests)]);
        hashes := hashes || prev;
        IF stay IS NULL THEN
            new_people := new_people || person;
            new_seqs := new_seqs || seq;
        ELSE
            closed_ids := closed_ids || stay;
            closed_seqs := closed_seqs || seq;
        END IF;
    END LOOP;
    PERFORM checkin_batch_write(
        records, array_fill(site, ARRAY[cardinality(seqs)]), seqs, digests, prevs, hashes,
        '{}', '{}', closed_ids, array_fill(at, ARRAY[cardinality(closed_ids)]),
        array_fill(gate, ARRAY[cardinality(closed_ids)]), closed_seqs,
        array_fill(site, ARRAY[cardinality(new_people)]), new_people,
        array_fill(at, ARRAY[cardinality(new_people)]), array_fill(gate, ARRAY[cardinality(new_people)]),
        new_seqs, array_fill(NULL::timestamptz, ARRAY[cardinality(new_people)]),
        array_fill(NULL::bigint, ARRAY[cardinality(new_people)]),
        array_fill(NULL::bigint, ARRAY[cardinality(new_people)]));
END
$$;
