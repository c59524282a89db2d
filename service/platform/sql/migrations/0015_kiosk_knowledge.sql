-- 0015: what kiosks know offline (issue 21, service/checkin/kiosk_sync.py). A kiosk's
-- copy is read from a site's unexpired passes: by site, not by a scan of every pass.
CREATE INDEX passes_site_idx ON passes (site_id, not_after);
