-- 0009: a declaration changes an existing person only with proof that it comes from
-- them (issue 16.2). A declaration that claims a known phone or national ID without
-- proof is kept with no person (person_id NULL: nobody's record, nobody's current
-- declaration) until an officer has checked the declarer's papers; it is never
-- cleared as such. Every filed declaration carries the SHA-256 of the re-declare key
-- shown to its declarer once: presenting the key proves the next declaration is theirs.
ALTER TABLE declarations ALTER COLUMN person_id DROP NOT NULL;
ALTER TABLE declarations ADD COLUMN redeclare_key_hash bytea
    CONSTRAINT declarations_redeclare_key_length CHECK (length(redeclare_key_hash) = 32);
ALTER TABLE declarations ADD CONSTRAINT declarations_claim_not_cleared
    CHECK (person_id IS NOT NULL OR status <> 'cleared');
CREATE UNIQUE INDEX declarations_redeclare_key ON declarations (redeclare_key_hash)
    WHERE redeclare_key_hash IS NOT NULL;
