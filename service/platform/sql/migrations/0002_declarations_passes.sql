-- 0002: people, their health declarations, the signed passes they yield, the keys
-- that sign them, and each site's declaration rules and flagged areas.

-- Per-site rules: the declaration policy (service.declarations.policy.SiteRules as JSON; {} means
-- the defaults) and the door rules of the check-in core (service.sites.door_rules).
ALTER TABLE sites
    ADD COLUMN declaration_rules jsonb NOT NULL DEFAULT '{}'::jsonb
        CONSTRAINT sites_declaration_rules_object CHECK (jsonb_typeof(declaration_rules) = 'object'),
    ADD COLUMN checkin_rules jsonb NOT NULL DEFAULT '{}'::jsonb
        CONSTRAINT sites_checkin_rules_object CHECK (jsonb_typeof(checkin_rules) = 'object');

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
CREATE TABLE declarations (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    person_id       bigint NOT NULL REFERENCES people (id),
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
    CONSTRAINT declarations_valid_after_submit CHECK (valid_until > submitted_at)
);
CREATE UNIQUE INDEX declarations_current_key ON declarations (person_id, site_id)
    WHERE superseded_at IS NULL;
CREATE INDEX declarations_review_idx ON declarations (site_id, submitted_at)
    WHERE status = 'review' AND superseded_at IS NULL;

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
