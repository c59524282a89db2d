-- 0010: when each API token was last used, so `token list` tells a live kiosk's token
-- from a forgotten one before `token revoke --id`. Written by the service at most once
-- a minute per token, in the background (service/identity/token_usage.py), never per scan.
ALTER TABLE api_tokens ADD COLUMN last_used_at timestamptz;
