-- What the workbench's overview, the dashboards and `o2c report` need at a million orders
-- (issue #19, #20): exposure kept per customer as balances change, instead of summed over
-- every current balance on each query, and indexes for the queries of one business day.
-- credit_exposure keeps its name and columns.

-- Open balances per customer and currency (the customer may be unknown), kept by the
-- projection from each batch's change to balance_current (projections/store.py). A row
-- whose orders are all settled stays, with open_orders 0, so that a batch only upserts.
CREATE TABLE open_by_customer (
    customer_id text,
    currency    text    NOT NULL,
    exposure    numeric NOT NULL,
    open_orders bigint  NOT NULL
);
CREATE UNIQUE INDEX open_by_customer_key ON open_by_customer (customer_id, currency)
    NULLS NOT DISTINCT;
-- The largest exposures first (the overview's and the dashboard's top 20).
CREATE INDEX open_by_customer_largest ON open_by_customer (exposure DESC, customer_id)
    WHERE open_orders > 0 AND customer_id IS NOT NULL;
INSERT INTO open_by_customer
SELECT customer_id, currency, sum(open_balance), count(*)
FROM balance_current WHERE open_balance > 0 GROUP BY customer_id, currency;

CREATE OR REPLACE VIEW credit_exposure AS
WITH exposure AS (
    SELECT customer_id, currency, exposure, open_orders
    FROM open_by_customer
    WHERE open_orders > 0 AND customer_id IS NOT NULL
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

-- One business day's facts (projections/reports.py, the daily report of one day): the
-- balances, write-offs and detections of that day found by time, not by a pass over all.
CREATE INDEX balance_history_time ON balance_history (event_time) INCLUDE (order_id);
CREATE INDEX mismatch_events_detected_time ON mismatch_events (event_time)
    WHERE kind = 'detected';
CREATE INDEX writeoffs_time ON writeoffs (event_time);
-- A customer's credit events, latest first (the largest exposures' breach columns).
CREATE INDEX credit_events_customer ON credit_events (customer_id, pos);

-- A closed day's ageing summed per customer, per channel and per region, as `o2c report
-- ageing` and the overview show it (projections/reports.py): one row per group, so that the
-- largest groups are an index scan rather than a sum over every open item's row of the day.
-- Filled with ageing_by_day (projections/materialise.py); here from the days stored so far.
CREATE TABLE ageing_groups_by_day (
    as_of        date    NOT NULL,
    grouping     text    NOT NULL CHECK (grouping IN ('customer', 'channel', 'region')),
    group_key    text,
    currency     text    NOT NULL,
    not_due      numeric NOT NULL,
    days_1_30    numeric NOT NULL,
    days_31_60   numeric NOT NULL,
    days_61_90   numeric NOT NULL,
    days_over_90 numeric NOT NULL,
    total        numeric NOT NULL
);
CREATE INDEX ageing_groups_by_day_key ON ageing_groups_by_day (as_of, grouping, group_key, currency);
CREATE INDEX ageing_groups_by_day_largest
    ON ageing_groups_by_day (as_of, grouping, total DESC, group_key, currency);
INSERT INTO ageing_groups_by_day
SELECT a.as_of, g.grouping,
       CASE g.grouping WHEN 'customer' THEN a.customer_id
                       WHEN 'channel' THEN coalesce(a.channel, 'unknown')
                       ELSE coalesce(a.region, 'unknown') END,
       a.currency,
       coalesce(sum(a.open_amount) FILTER (WHERE a.bucket = 'not_due'), 0),
       coalesce(sum(a.open_amount) FILTER (WHERE a.bucket = '1-30'), 0),
       coalesce(sum(a.open_amount) FILTER (WHERE a.bucket = '31-60'), 0),
       coalesce(sum(a.open_amount) FILTER (WHERE a.bucket = '61-90'), 0),
       coalesce(sum(a.open_amount) FILTER (WHERE a.bucket = '>90'), 0),
       sum(a.open_amount)
FROM ageing_by_day a
CROSS JOIN (VALUES ('customer'), ('channel'), ('region')) g (grouping)
GROUP BY 1, 2, 3, 4;
