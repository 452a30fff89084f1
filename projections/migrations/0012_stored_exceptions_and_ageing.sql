-- The `exceptions` view and `ar_ageing` at a million orders (issue #20): each query of the
-- view folded every mismatch event (about 1.2 s for "open exceptions by reason"), and
-- ar_ageing summed the day's ageing_by_day rows per group (0.14 s). Both keep their names,
-- columns and rows; what they read is now stored, in the read models' own transaction.

-- Each mismatch's state as 0003's `exceptions` view folds it, one row per mismatch with a
-- detection: the latest detection (log order) gives the facts, the first one the detection
-- time, the last event of any kind the state, the last assignment the owner. Only age_days
-- is left to the view (it moves with business_today, not with the mismatch's events).
-- Not exception_queue (0006): that one is written by the timeline's projection, which may
-- be batches ahead or behind; this one commits with mismatch_events, so the view agrees
-- with daily_recon_report's mismatches and the other read models in every snapshot.
CREATE TABLE exception_state (
    mismatch_id text PRIMARY KEY,
    reason      text,
    severity    text,
    status      text NOT NULL,
    owner       text,
    currency    text,
    amount      numeric,
    expected    numeric,
    actual      numeric,
    difference  numeric,
    order_id    text,
    payment_id  text,
    payout_id   text,
    line_id     text,
    customer_id text,
    detected_at timestamptz NOT NULL,
    resolved_at timestamptz,
    resolution  text,
    note        text
);
-- The dashboards count the unresolved by reason and status; `o2c report exceptions` lists
-- one status in detection order.
CREATE INDEX exception_state_status ON exception_state (status, reason) INCLUDE (currency, amount);
CREATE INDEX exception_state_detected ON exception_state (status, detected_at, mismatch_id);

-- The state of these mismatches folded again from all their events, by the index of 0002
-- (a few probes per mismatch). BEGIN ATOMIC binds the tables when created, as a view
-- does, so a rebuild's schema swap keeps it on its own schema's tables.
CREATE FUNCTION exception_state_refresh(ids text[]) RETURNS void
LANGUAGE sql
BEGIN ATOMIC
DELETE FROM exception_state WHERE mismatch_id = ANY (ids);
INSERT INTO exception_state
SELECT d.mismatch_id, d.reason, d.severity,
       CASE WHEN l.kind = 'resolved' THEN 'resolved'
            WHEN a.owner IS NOT NULL THEN 'assigned'
            ELSE 'open' END,
       a.owner, d.currency,
       coalesce(abs(d.difference), abs(d.actual), abs(d.expected)),
       d.expected, d.actual, d.difference,
       d.order_id, d.payment_id, d.payout_id, d.line_id, d.customer_id,
       f.detected_at,
       CASE WHEN l.kind = 'resolved' THEN l.event_time END,
       CASE WHEN l.kind = 'resolved' THEN l.resolution END,
       CASE WHEN l.kind = 'resolved' THEN l.note END
FROM (SELECT DISTINCT unnest(ids) AS mismatch_id) i
CROSS JOIN LATERAL (SELECT * FROM mismatch_events m
                    WHERE m.mismatch_id = i.mismatch_id AND m.kind = 'detected'
                    ORDER BY m.pos DESC LIMIT 1) d
CROSS JOIN LATERAL (SELECT min(m.event_time) AS detected_at FROM mismatch_events m
                    WHERE m.mismatch_id = i.mismatch_id AND m.kind = 'detected') f
CROSS JOIN LATERAL (SELECT m.kind, m.event_time, m.resolution, m.note FROM mismatch_events m
                    WHERE m.mismatch_id = i.mismatch_id
                    ORDER BY m.pos DESC LIMIT 1) l
LEFT JOIN LATERAL (SELECT m.owner FROM mismatch_events m
                   WHERE m.mismatch_id = i.mismatch_id AND m.kind = 'assigned'
                   ORDER BY m.pos DESC LIMIT 1) a ON true;
END;

-- Whatever writes mismatch_events (a projection's batch, a rebuild's, a bench's load)
-- keeps exception_state in the same statement's transaction: once per statement, for the
-- mismatches it added events to. The schema is the table's own at the time of the call
-- (TG_TABLE_SCHEMA follows a rename), never the caller's search_path.
CREATE FUNCTION exception_state_follow() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE format('SELECT %I.exception_state_refresh($1)', TG_TABLE_SCHEMA)
        USING ARRAY(SELECT DISTINCT mismatch_id FROM added);
    RETURN NULL;
END
$$;
CREATE TRIGGER exception_state_follows AFTER INSERT ON mismatch_events
    REFERENCING NEW TABLE AS added
    FOR EACH STATEMENT EXECUTE FUNCTION exception_state_follow();

SELECT exception_state_refresh(ARRAY(SELECT DISTINCT mismatch_id FROM mismatch_events));

CREATE OR REPLACE VIEW exceptions AS
SELECT s.mismatch_id, s.reason, s.severity, s.status, s.owner, s.currency, s.amount,
       s.expected, s.actual, s.difference,
       s.order_id, s.payment_id, s.payout_id, s.line_id, s.customer_id,
       s.detected_at, s.resolved_at, s.resolution, s.note,
       greatest(0, CASE WHEN s.status = 'resolved' THEN (s.resolved_at AT TIME ZONE 'UTC')::date
                        ELSE t.day END
                   - (s.detected_at AT TIME ZONE 'UTC')::date) AS age_days
FROM exception_state s
CROSS JOIN business_today t;

-- ar_ageing's rows of each closed day, stored with the day's ageing_by_day rows
-- (projections/materialise.py), so that the view reads the current day's rows instead of
-- summing its buckets per group on each query. Nullable sums as the view's: a group with
-- no item in a bucket has null there, not 0.
CREATE TABLE ar_ageing_by_day (
    as_of        date    NOT NULL,
    customer_id  text,
    channel      text,
    region       text,
    currency     text    NOT NULL,
    not_due      numeric,
    days_1_30    numeric,
    days_31_60   numeric,
    days_61_90   numeric,
    days_over_90 numeric,
    total        numeric NOT NULL
);
CREATE INDEX ar_ageing_by_day_as_of ON ar_ageing_by_day (as_of);
-- The same statement as materialise.py's _AR_AGEING, for the days stored so far.
INSERT INTO ar_ageing_by_day
SELECT a.as_of, a.customer_id, a.channel, a.region, a.currency,
       sum(a.open_amount) FILTER (WHERE a.bucket = 'not_due'),
       sum(a.open_amount) FILTER (WHERE a.bucket = '1-30'),
       sum(a.open_amount) FILTER (WHERE a.bucket = '31-60'),
       sum(a.open_amount) FILTER (WHERE a.bucket = '61-90'),
       sum(a.open_amount) FILTER (WHERE a.bucket = '>90'),
       sum(a.open_amount)
FROM ageing_by_day a
GROUP BY a.as_of, a.customer_id, a.channel, a.region, a.currency;

CREATE OR REPLACE VIEW ar_ageing AS
SELECT a.as_of, a.customer_id, a.channel, a.region, a.currency,
       a.not_due, a.days_1_30, a.days_31_60, a.days_61_90, a.days_over_90, a.total
FROM business_today t
JOIN ar_ageing_by_day a ON a.as_of = t.day;

ANALYZE exception_state, ar_ageing_by_day;
