-- DSO and ageing stored per closed business day (projections/materialise.py), so that the
-- dashboard views read a few rows instead of the whole balance history. The views keep
-- their names and columns; only what lies beneath them changes.

-- Every currency seen in a balance: DSO has a row per closed day and currency, as before.
CREATE TABLE currencies (
    currency text PRIMARY KEY
);
INSERT INTO currencies SELECT DISTINCT currency FROM balance_history;

-- A closed day's receivables at its end and credit sales of the 90 days ending it, per
-- currency; a currency without a row has neither (zero).
CREATE TABLE dso_by_day (
    day              date    NOT NULL,
    currency         text    NOT NULL,
    receivables      numeric NOT NULL,
    credit_sales_90d numeric NOT NULL,
    PRIMARY KEY (day, currency)
);

-- A closed day's open items at its end, summed per customer, channel, region, currency
-- and bucket (the columns may be null, as in ar_ageing, so no primary key).
CREATE TABLE ageing_by_day (
    as_of       date    NOT NULL,
    customer_id text,
    channel     text,
    region      text,
    currency    text    NOT NULL,
    bucket      text    NOT NULL,
    open_amount numeric NOT NULL,
    items       integer NOT NULL
);
CREATE INDEX ageing_by_day_as_of ON ageing_by_day (as_of);

CREATE OR REPLACE VIEW dso_daily AS
WITH target AS (
    SELECT coalesce((SELECT value::numeric FROM read_settings WHERE key = 'dso_target_days'), 45)
           AS days
),
figures AS (
    SELECT d.day, cur.currency,
           coalesce(m.receivables, 0) AS receivables,
           coalesce(m.credit_sales_90d, 0) AS credit_sales_90d
    FROM closed_days d
    CROSS JOIN currencies cur
    LEFT JOIN dso_by_day m ON m.day = d.day AND m.currency = cur.currency
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

CREATE OR REPLACE VIEW ar_ageing AS
SELECT a.as_of, a.customer_id, a.channel, a.region, a.currency,
       sum(a.open_amount) FILTER (WHERE a.bucket = 'not_due') AS not_due,
       sum(a.open_amount) FILTER (WHERE a.bucket = '1-30') AS days_1_30,
       sum(a.open_amount) FILTER (WHERE a.bucket = '31-60') AS days_31_60,
       sum(a.open_amount) FILTER (WHERE a.bucket = '61-90') AS days_61_90,
       sum(a.open_amount) FILTER (WHERE a.bucket = '>90') AS days_over_90,
       sum(a.open_amount) AS total
FROM business_today t
JOIN ageing_by_day a ON a.as_of = t.day
GROUP BY a.as_of, a.customer_id, a.channel, a.region, a.currency;

-- Closed days whose rows above are computed; `o2c projections run` computes the others
-- (days closed before this migration) when it starts.
CREATE TABLE materialised_days (
    day date PRIMARY KEY
);

-- The first closed day that facts of a batch changed while the projection was catching up
-- (its batches full): computed again, with every closed day after it, once it is not.
CREATE TABLE materialise_pending (
    only_row boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    from_day date NOT NULL
);
