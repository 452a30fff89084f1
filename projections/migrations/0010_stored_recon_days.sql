-- daily_recon_report stored per closed business day (projections/materialise.py), so that
-- the match-rate, write-off and currency panels read a few rows per day instead of the
-- view's pass over every order and balance snapshot (5-35 s at 1,000,000 orders). The
-- view keeps its name and columns; days whose rows are not stored (the open day, or any
-- day not closed) are still computed on the fly, one day at a time from the indexes.

-- A closed day's rows of daily_recon_report, column for column (no primary key: the
-- view's channel and currency may be null, as they may be there).
CREATE TABLE recon_by_day (
    day                  date NOT NULL,
    channel              text,
    currency             text,
    orders               bigint NOT NULL,
    paid                 numeric NOT NULL,
    settled              numeric NOT NULL,
    matched              bigint NOT NULL,
    matched_rate         numeric,
    mismatches           bigint NOT NULL,
    mismatches_by_reason jsonb NOT NULL,
    written_off          numeric NOT NULL
);
CREATE INDEX recon_by_day_day ON recon_by_day (day);

-- A batch finds the days of the orders it touched (materialise.report_days) by these.
CREATE INDEX writeoffs_order ON writeoffs (order_id);
CREATE INDEX mismatch_events_order ON mismatch_events (order_id);

-- The days already stored when this migration runs get their rows from the view as it
-- was, once; later days are stored by the projection when they close.
INSERT INTO recon_by_day
SELECT r.* FROM daily_recon_report r JOIN materialised_days m USING (day);

-- One day's rows, the same query as DAILY_OF_DAY in projections/reports.py (keep the two
-- alike; tests/integration/test_stored_recon_days.py checks both against 0003's view).
-- It reads the report_* views of 0009, not the tables: a function in a view runs with
-- the caller's rights, and the reader may read no table. BEGIN ATOMIC binds the names
-- when created, as a view does, so a rebuild's schema swap keeps it pointing at its own.
-- SET keeps the planner from inlining it into the view: inlined, the view's estimated cost
-- made PostgreSQL compile every query of it with JIT (2 s at 100,000 orders, for a plan
-- that then ran in 3 ms with no day to compute).
CREATE FUNCTION recon_of_day(of_day date) RETURNS SETOF recon_by_day
LANGUAGE sql STABLE ROWS 20 SET jit = off
BEGIN ATOMIC
WITH placed AS (
    SELECT o.channel, o.currency, count(*) AS orders,
           count(*) FILTER (WHERE EXISTS (SELECT 1 FROM report_order_matches m
                                           WHERE m.order_id = o.order_id)) AS matched
    FROM report_orders o
    WHERE (o.placed_at AT TIME ZONE 'UTC')::date = of_day AND o.channel IS NOT NULL
    GROUP BY 1, 2
),
snapshots AS (
    SELECT h.channel, h.currency,
           max(h.event_time) OVER w AS valid_from,
           h.paid - coalesce(lag(h.paid) OVER w, 0) AS paid_change,
           h.settled - coalesce(lag(h.settled) OVER w, 0) AS settled_change
    FROM report_balance_history h
    WHERE h.order_id IN (SELECT t.order_id FROM report_balance_history t
                         WHERE t.event_time >= ((of_day)::timestamp AT TIME ZONE 'UTC') AND t.event_time < ((of_day + 1)::timestamp AT TIME ZONE 'UTC'))
    WINDOW w AS (PARTITION BY h.order_id ORDER BY h.pos ROWS UNBOUNDED PRECEDING)
),
money AS (
    SELECT coalesce(channel, 'unknown') AS channel, currency,
           sum(paid_change) AS paid, sum(settled_change) AS settled
    FROM snapshots WHERE (valid_from AT TIME ZONE 'UTC')::date = of_day GROUP BY 1, 2
),
written AS (
    SELECT coalesce((SELECT o.channel FROM report_orders o WHERE o.order_id = w.order_id),
             (SELECT b.channel FROM report_balance_current b WHERE b.order_id = w.order_id), 'unknown') AS channel, w.currency, sum(w.amount) AS written_off
    FROM report_writeoffs w WHERE w.event_time >= ((of_day)::timestamp AT TIME ZONE 'UTC') AND w.event_time < ((of_day + 1)::timestamp AT TIME ZONE 'UTC')
    GROUP BY 1, 2
),
raised AS (
    SELECT coalesce((SELECT o.channel FROM report_orders o WHERE o.order_id = m.order_id),
             (SELECT b.channel FROM report_balance_current b WHERE b.order_id = m.order_id), 'unknown') AS channel, m.currency, m.reason, count(*) AS n
    FROM report_mismatch_events m
    WHERE m.kind = 'detected' AND m.event_time >= ((of_day)::timestamp AT TIME ZONE 'UTC') AND m.event_time < ((of_day + 1)::timestamp AT TIME ZONE 'UTC')
    GROUP BY 1, 2, 3
),
mismatches AS (
    SELECT channel, currency, sum(n)::bigint AS mismatches,
           jsonb_object_agg(reason, n ORDER BY reason) AS mismatches_by_reason
    FROM raised GROUP BY 1, 2
),
keys AS (
    SELECT channel, currency FROM placed
    UNION SELECT channel, currency FROM money
    UNION SELECT channel, currency FROM written
    UNION SELECT channel, currency FROM mismatches
)
SELECT of_day AS day, k.channel, k.currency,
       coalesce(p.orders, 0) AS orders,
       coalesce(m.paid, 0) AS paid,
       coalesce(m.settled, 0) AS settled,
       coalesce(p.matched, 0) AS matched,
       CASE WHEN p.orders > 0 THEN round(p.matched::numeric / p.orders, 4) END AS matched_rate,
       coalesce(x.mismatches, 0) AS mismatches,
       coalesce(x.mismatches_by_reason, '{}'::jsonb) AS mismatches_by_reason,
       coalesce(w.written_off, 0) AS written_off
FROM keys k
LEFT JOIN placed p USING (channel, currency)
LEFT JOIN money m USING (channel, currency)
LEFT JOIN written w USING (channel, currency)
LEFT JOIN mismatches x USING (channel, currency);
END;

-- The stored rows of the days computed when closed, and the other days with facts
-- computed now. The span of days with facts comes from the time indexes (a few index
-- probes); every day not stored in it is computed, so a day never closed still shows.
CREATE OR REPLACE VIEW daily_recon_report AS
WITH span AS (
    SELECT least((SELECT min((placed_at AT TIME ZONE 'UTC')::date) FROM orders),
                 ((SELECT min(event_time) FROM balance_history) AT TIME ZONE 'UTC')::date,
                 ((SELECT min(event_time) FROM writeoffs) AT TIME ZONE 'UTC')::date,
                 ((SELECT min(event_time) FROM mismatch_events WHERE kind = 'detected')
                  AT TIME ZONE 'UTC')::date)
               AS first_day,
           greatest((SELECT max((placed_at AT TIME ZONE 'UTC')::date) FROM orders),
                    ((SELECT max(event_time) FROM balance_history) AT TIME ZONE 'UTC')::date,
                    ((SELECT max(event_time) FROM writeoffs) AT TIME ZONE 'UTC')::date,
                    ((SELECT max(event_time) FROM mismatch_events WHERE kind = 'detected')
                  AT TIME ZONE 'UTC')::date)
               AS last_day
),
not_stored AS (
    SELECT span.first_day + i AS day FROM span, generate_series(0, span.last_day - span.first_day) i
    EXCEPT SELECT day FROM materialised_days
)
SELECT s.day, s.channel, s.currency, s.orders, s.paid, s.settled, s.matched, s.matched_rate,
       s.mismatches, s.mismatches_by_reason, s.written_off
FROM recon_by_day s
WHERE EXISTS (SELECT 1 FROM materialised_days m WHERE m.day = s.day)
UNION ALL
SELECT r.day, r.channel, r.currency, r.orders, r.paid, r.settled, r.matched, r.matched_rate,
       r.mismatches, r.mismatches_by_reason, r.written_off
FROM not_stored n CROSS JOIN LATERAL recon_of_day(n.day) r;
