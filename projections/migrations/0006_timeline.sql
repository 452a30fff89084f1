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

-- The exception queue's current state, one row per mismatch, kept by the same projection
-- as the timeline so that the workbench's queue reads an indexed table rather than
-- folding mismatch_events on each request. Its rules are the `exceptions` view's: the
-- latest detection (log order) gives the facts, the first one the detection time, the last
-- event of any kind the state, the last assignment the owner.
CREATE TABLE exception_queue (
    mismatch_id     text PRIMARY KEY,
    detected_pos    bigint,
    reason          text,
    severity        text,
    currency        text,
    expected        numeric,
    actual          numeric,
    difference      numeric,
    amount          numeric,
    order_id        text,
    payment_id      text,
    payout_id       text,
    line_id         text,
    customer_id     text,
    detected_at     timestamptz,
    last_pos        bigint NOT NULL,
    last_kind       text NOT NULL,
    last_time       timestamptz NOT NULL,
    last_resolution text,
    last_note       text,
    owner_pos       bigint,
    owner           text,
    status          text GENERATED ALWAYS AS (
        CASE WHEN last_kind = 'resolved' THEN 'resolved'
             WHEN owner IS NOT NULL THEN 'assigned'
             ELSE 'open' END) STORED
);
CREATE INDEX exception_queue_detected ON exception_queue (detected_at, mismatch_id)
    WHERE detected_pos IS NOT NULL;
CREATE INDEX exception_queue_amount ON exception_queue ((coalesce(amount, 0)), mismatch_id)
    WHERE detected_pos IS NOT NULL;
CREATE INDEX exception_queue_reason ON exception_queue (reason, status, detected_at);
CREATE INDEX exception_queue_customer ON exception_queue (customer_id);
