-- 0001: the foundation: sites, their gates and the API tokens that reach them.

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
                CHECK (role IN ('admin', 'guard', 'auditor', 'kiosk')),
    site_id     bigint REFERENCES sites (id),
    gate_id     bigint REFERENCES gates (id),
    label       text NOT NULL DEFAULT '' CONSTRAINT api_tokens_label_length CHECK (length(label) <= 120),
    created_at  timestamptz NOT NULL DEFAULT now(),
    revoked_at  timestamptz,
    CONSTRAINT api_tokens_kiosk_has_gate CHECK ((role = 'kiosk') = (gate_id IS NOT NULL))
);
