-- 0006: people who log in to the guard console. Passwords are kept only as argon2id
-- hashes; sessions only as the SHA-256 of their random cookie value.
CREATE TABLE console_accounts (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    username        text NOT NULL CONSTRAINT console_accounts_username_key UNIQUE
                    CONSTRAINT console_accounts_username_format CHECK (username ~ '^[a-z0-9][a-z0-9._-]{1,39}$'),
    password_hash   text NOT NULL CONSTRAINT console_accounts_password_hash_format CHECK (password_hash LIKE '$argon2id$%'),
    role            text NOT NULL CONSTRAINT console_accounts_role_valid
                    CHECK (role IN ('admin', 'guard', 'auditor')),
    site_id         bigint REFERENCES sites (id),
    full_name       text NOT NULL DEFAULT '' CONSTRAINT console_accounts_full_name_length CHECK (length(full_name) <= 120),
    failed_logins   integer NOT NULL DEFAULT 0,
    locked_until    timestamptz,
    last_login_at   timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now(),
    disabled_at     timestamptz
);

CREATE TABLE console_sessions (
    key_hash        bytea PRIMARY KEY CONSTRAINT console_sessions_key_hash_length CHECK (length(key_hash) = 32),
    account_id      bigint NOT NULL REFERENCES console_accounts (id),
    data            jsonb NOT NULL CONSTRAINT console_sessions_data_object CHECK (jsonb_typeof(data) = 'object'),
    created_at      timestamptz NOT NULL DEFAULT now(),
    expires_at      timestamptz NOT NULL
);
CREATE INDEX console_sessions_account_idx ON console_sessions (account_id);
CREATE INDEX console_sessions_expiry_idx ON console_sessions (expires_at);
