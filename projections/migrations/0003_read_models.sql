-- The views dashboards read (README, "Read models"). Only these are the contract; the
-- tables beneath them may change between migrations.

-- Each balance snapshot with the event-time interval in which it was the order's balance.
-- valid_from is the latest event time seen for the order so far, so a late fact (older
-- time, higher offset) never makes history go back in time; valid_to is the next
-- snapshot's valid_from. The *_change columns are the differences to the snapshot before.
CREATE VIEW balance_validity AS
WITH ordered AS (
    SELECT h.*,
           max(h.event_time) OVER w AS valid_from,
           h.receivable - coalesce(lag(h.receivable) OVER w, 0) AS receivable_change,
           h.paid - coalesce(lag(h.paid) OVER w, 0) AS paid_change,
           h.settled - coalesce(lag(h.settled) OVER w, 0) AS settled_change
    FROM balance_history h
    WINDOW w AS (PARTITION BY h.order_id ORDER BY h.pos ROWS UNBOUNDED PRECEDING)
)
SELECT o.*,
       lead(o.valid_from) OVER (PARTITION BY o.order_id ORDER BY o.pos) AS valid_to,
       (o.valid_from AT TIME ZONE 'UTC')::date AS valid_day
FROM ordered o;

-- One row per order with an open balance, now.
CREATE VIEW open_items AS
SELECT b.order_id,
       b.customer_id,
       c.name AS customer_name,
       coalesce(b.channel, o.channel) AS channel,
       coalesce(b.region, o.region, c.region) AS region,
       b.currency,
       b.due_date,
       b.open_balance AS open_amount,
       b.status,
       b.receivable,
       b.paid
FROM balance_current b
LEFT JOIN orders o USING (order_id)
LEFT JOIN customers c ON c.customer_id = b.customer_id
WHERE b.open_balance > 0;

-- The read side's "today": the last business day closed (event time; the wall clock only
-- before any day was closed).
CREATE VIEW business_today AS
SELECT coalesce(max(day), (now() AT TIME ZONE 'UTC')::date) AS day FROM closed_days;

-- Open items as of the end of the last closed business day, with days past due and bucket.
CREATE VIEW ar_ageing_items AS
SELECT t.day AS as_of,
       v.order_id,
       v.customer_id,
       coalesce(v.channel, o.channel) AS channel,
       coalesce(v.region, o.region, c.region) AS region,
       v.currency,
       v.due_date,
       v.open_balance AS open_amount,
       t.day - v.due_date AS days_past_due,
       CASE
           WHEN v.due_date IS NULL OR t.day - v.due_date <= 0 THEN 'not_due'
           WHEN t.day - v.due_date <= 30 THEN '1-30'
           WHEN t.day - v.due_date <= 60 THEN '31-60'
           WHEN t.day - v.due_date <= 90 THEN '61-90'
           ELSE '>90'
       END AS bucket
FROM business_today t
JOIN balance_validity v
  ON v.valid_from < ((t.day + 1)::timestamp AT TIME ZONE 'UTC')
 AND (v.valid_to IS NULL OR v.valid_to >= ((t.day + 1)::timestamp AT TIME ZONE 'UTC'))
LEFT JOIN orders o ON o.order_id = v.order_id
LEFT JOIN customers c ON c.customer_id = v.customer_id
WHERE v.open_balance > 0;

CREATE VIEW ar_ageing AS
SELECT as_of, customer_id, channel, region, currency,
       sum(open_amount) FILTER (WHERE bucket = 'not_due') AS not_due,
       sum(open_amount) FILTER (WHERE bucket = '1-30') AS days_1_30,
       sum(open_amount) FILTER (WHERE bucket = '31-60') AS days_31_60,
       sum(open_amount) FILTER (WHERE bucket = '61-90') AS days_61_90,
       sum(open_amount) FILTER (WHERE bucket = '>90') AS days_over_90,
       sum(open_amount) AS total
FROM ar_ageing_items
GROUP BY as_of, customer_id, channel, region, currency;

-- DSO of each closed business day and currency: receivables at the end of the day divided
-- by the credit sales (net change of receivables) of the 90 days ending that day, x 90.
CREATE VIEW dso_daily AS
WITH v AS MATERIALIZED (
    SELECT currency, open_balance, receivable_change, valid_from, valid_to, valid_day
    FROM balance_validity
),
target AS (
    SELECT coalesce((SELECT value::numeric FROM read_settings WHERE key = 'dso_target_days'), 45)
           AS days
),
figures AS (
    SELECT d.day, cur.currency,
           (SELECT coalesce(sum(v.open_balance), 0) FROM v
             WHERE v.currency = cur.currency AND v.open_balance > 0
               AND v.valid_from < ((d.day + 1)::timestamp AT TIME ZONE 'UTC')
               AND (v.valid_to IS NULL
                    OR v.valid_to >= ((d.day + 1)::timestamp AT TIME ZONE 'UTC'))
           ) AS receivables,
           (SELECT coalesce(sum(v.receivable_change), 0) FROM v
             WHERE v.currency = cur.currency AND v.valid_day BETWEEN d.day - 89 AND d.day
           ) AS credit_sales_90d
    FROM closed_days d
    CROSS JOIN (SELECT DISTINCT currency FROM balance_history) cur
)
SELECT f.day, f.currency, f.receivables, f.credit_sales_90d,
       CASE WHEN f.credit_sales_90d > 0
            THEN round(f.receivables / f.credit_sales_90d * 90, 2) END AS dso_days,
       t.days AS target_days,
       round(t.days * 1.1, 2) AS alert_days,
       coalesce(f.credit_sales_90d > 0
                AND round(f.receivables / f.credit_sales_90d * 90, 2) > round(t.days * 1.1, 2),
                false) AS flagged
FROM figures f CROSS JOIN target t;

-- Exposure per customer and currency: open receivables plus orders not yet invoiced,
-- both carried by the order's open balance (cancelled orders have none).
CREATE VIEW credit_exposure AS
WITH exposure AS (
    SELECT customer_id, currency,
           sum(open_balance) AS exposure,
           count(*) AS open_orders
    FROM balance_current
    WHERE open_balance > 0 AND customer_id IS NOT NULL
    GROUP BY customer_id, currency
),
last_credit AS (
    SELECT DISTINCT ON (customer_id) customer_id, kind
    FROM credit_events ORDER BY customer_id, pos DESC
),
breaches AS (
    SELECT customer_id, count(*) AS breaches, max(at) AS last_breach_at
    FROM credit_events WHERE kind = 'breached' GROUP BY customer_id
)
SELECT coalesce(e.customer_id, c.customer_id) AS customer_id,
       c.name AS customer_name,
       coalesce(e.currency, c.currency) AS currency,
       coalesce(e.exposure, 0) AS exposure,
       coalesce(e.open_orders, 0) AS open_orders,
       c.credit_limit,
       CASE WHEN c.credit_limit > 0 AND c.currency = coalesce(e.currency, c.currency)
            THEN round(coalesce(e.exposure, 0) / c.credit_limit, 4) END AS utilisation,
       coalesce(l.kind = 'breached', false) AS breached,
       coalesce(b.breaches, 0) AS breaches,
       b.last_breach_at
FROM exposure e
FULL JOIN customers c ON c.customer_id = e.customer_id
LEFT JOIN last_credit l ON l.customer_id = coalesce(e.customer_id, c.customer_id)
LEFT JOIN breaches b ON b.customer_id = coalesce(e.customer_id, c.customer_id);

-- Every mismatch with its state: the last event in log order decides (a re-detection after
-- a resolution opens it again), the last assignment names the owner.
CREATE VIEW exceptions AS
WITH detection AS (
    SELECT DISTINCT ON (mismatch_id) *
    FROM mismatch_events WHERE kind = 'detected' ORDER BY mismatch_id, pos DESC
),
first_seen AS (
    SELECT mismatch_id, min(event_time) AS detected_at
    FROM mismatch_events WHERE kind = 'detected' GROUP BY mismatch_id
),
last_event AS (
    SELECT DISTINCT ON (mismatch_id) mismatch_id, kind, event_time, resolution, note
    FROM mismatch_events ORDER BY mismatch_id, pos DESC
),
assignment AS (
    SELECT DISTINCT ON (mismatch_id) mismatch_id, owner
    FROM mismatch_events WHERE kind = 'assigned' ORDER BY mismatch_id, pos DESC
)
SELECT d.mismatch_id,
       d.reason,
       d.severity,
       CASE WHEN l.kind = 'resolved' THEN 'resolved'
            WHEN a.owner IS NOT NULL THEN 'assigned'
            ELSE 'open' END AS status,
       a.owner,
       d.currency,
       coalesce(abs(d.difference), abs(d.actual), abs(d.expected)) AS amount,
       d.expected, d.actual, d.difference,
       d.order_id, d.payment_id, d.payout_id, d.line_id, d.customer_id,
       f.detected_at,
       CASE WHEN l.kind = 'resolved' THEN l.event_time END AS resolved_at,
       CASE WHEN l.kind = 'resolved' THEN l.resolution END AS resolution,
       CASE WHEN l.kind = 'resolved' THEN l.note END AS note,
       greatest(0, CASE WHEN l.kind = 'resolved' THEN (l.event_time AT TIME ZONE 'UTC')::date
                        ELSE t.day END
                   - (f.detected_at AT TIME ZONE 'UTC')::date) AS age_days
FROM detection d
JOIN first_seen f USING (mismatch_id)
JOIN last_event l USING (mismatch_id)
LEFT JOIN assignment a USING (mismatch_id)
CROSS JOIN business_today t;

-- Per business day (UTC), channel and currency: orders placed, amounts paid and settled
-- that day, how many of the day's orders are matched now, mismatches raised that day by
-- reason, and amounts written off.
CREATE VIEW daily_recon_report AS
WITH channel_of AS (
    SELECT coalesce(o.order_id, b.order_id) AS order_id,
           coalesce(o.channel, b.channel, 'unknown') AS channel
    FROM orders o FULL JOIN balance_current b ON b.order_id = o.order_id
),
placed AS (
    SELECT (o.placed_at AT TIME ZONE 'UTC')::date AS day, o.channel, o.currency,
           count(*) AS orders,
           count(*) FILTER (WHERE EXISTS (SELECT 1 FROM order_matches m
                                           WHERE m.order_id = o.order_id)) AS matched
    FROM orders o WHERE o.placed_at IS NOT NULL AND o.channel IS NOT NULL
    GROUP BY 1, 2, 3
),
money AS (
    SELECT v.valid_day AS day, coalesce(v.channel, 'unknown') AS channel, v.currency,
           sum(v.paid_change) AS paid, sum(v.settled_change) AS settled
    FROM balance_validity v GROUP BY 1, 2, 3
),
written AS (
    SELECT (w.event_time AT TIME ZONE 'UTC')::date AS day, coalesce(c.channel, 'unknown') AS channel,
           w.currency, sum(w.amount) AS written_off
    FROM writeoffs w LEFT JOIN channel_of c USING (order_id) GROUP BY 1, 2, 3
),
raised AS (
    SELECT (m.event_time AT TIME ZONE 'UTC')::date AS day, coalesce(c.channel, 'unknown') AS channel,
           m.currency, m.reason, count(*) AS n
    FROM mismatch_events m LEFT JOIN channel_of c USING (order_id)
    WHERE m.kind = 'detected' GROUP BY 1, 2, 3, 4
),
mismatches AS (
    SELECT day, channel, currency, sum(n)::bigint AS mismatches,
           jsonb_object_agg(reason, n ORDER BY reason) AS mismatches_by_reason
    FROM raised GROUP BY 1, 2, 3
),
keys AS (
    SELECT day, channel, currency FROM placed
    UNION SELECT day, channel, currency FROM money
    UNION SELECT day, channel, currency FROM written
    UNION SELECT day, channel, currency FROM mismatches
)
SELECT k.day, k.channel, k.currency,
       coalesce(p.orders, 0) AS orders,
       coalesce(m.paid, 0) AS paid,
       coalesce(m.settled, 0) AS settled,
       coalesce(p.matched, 0) AS matched,
       CASE WHEN p.orders > 0 THEN round(p.matched::numeric / p.orders, 4) END AS matched_rate,
       coalesce(x.mismatches, 0) AS mismatches,
       coalesce(x.mismatches_by_reason, '{}'::jsonb) AS mismatches_by_reason,
       coalesce(w.written_off, 0) AS written_off
FROM keys k
LEFT JOIN placed p USING (day, channel, currency)
LEFT JOIN money m USING (day, channel, currency)
LEFT JOIN written w USING (day, channel, currency)
LEFT JOIN mismatches x USING (day, channel, currency);
