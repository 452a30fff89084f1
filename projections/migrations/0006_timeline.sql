-- The timeline (projections/timeline.py): every fact and output by each id it names, for
-- the workbench's search and audit trail. Written by its own projection ('timeline' in
-- projection_offsets and processed_events), exactly once like the read models.
CREATE TABLE timeline (
    ref_id       text NOT NULL,
    ref_kind     text NOT NULL,
    event_id     text NOT NULL,
    event_time   timestamptz NOT NULL,
    type         text NOT NULL,
    summary      text NOT NULL,
    by_user      text,
    causation_id text,
    source       text NOT NULL,
    pos          bigint NOT NULL,
    PRIMARY KEY (ref_id, ref_kind, event_id)
);
-- Search by an id or its prefix (LIKE 'prefix%' uses it whatever the collation).
CREATE INDEX timeline_ref_prefix ON timeline (ref_id text_pattern_ops);
CREATE INDEX timeline_ref_time ON timeline (ref_id, event_time, pos);
