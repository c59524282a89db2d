-- 0014: the health desk's reports (issue 19). Declarations that contradict an official
-- record are counted per person and site (the review queue, the person's tests).
CREATE INDEX declarations_mismatch_idx ON declarations (person_id, site_id)
    WHERE reasons @> '[{"code": "declaration_mismatch"}]';
