-- 0004: what survives the retention purge of personal data.

-- Per site and day (in the site's time zone): the counts kept after the events of that
-- day lose their personal data and the stays are deleted.
CREATE TABLE daily_counts (
    site_id         bigint NOT NULL REFERENCES sites (id),
    day             date NOT NULL,
    entries         integer NOT NULL CONSTRAINT daily_counts_entries_nonnegative CHECK (entries >= 0),
    exits           integer NOT NULL CONSTRAINT daily_counts_exits_nonnegative CHECK (exits >= 0),
    denials         jsonb NOT NULL DEFAULT '{}'::jsonb
                    CONSTRAINT daily_counts_denials_object CHECK (jsonb_typeof(denials) = 'object'),
    peak_inside     integer NOT NULL CONSTRAINT daily_counts_peak_nonnegative CHECK (peak_inside >= 0),
    computed_at     timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT daily_counts_pkey PRIMARY KEY (site_id, day)
);
