-- What the one-day queries of 0008 read (projections/reports.py DAILY_OF_DAY and the stored
-- ageing groups; `o2c report` as the reader, the workbench's overview as the web role), as
-- views: the reader may read no table (0007). Plain views of one table are inlined by the
-- planner, so the queries still use 0008's indexes. Only the columns those queries use.
CREATE OR REPLACE VIEW report_orders AS
SELECT order_id, channel, region, currency, placed_at FROM orders;
CREATE VIEW report_order_matches AS SELECT order_id FROM order_matches;
CREATE VIEW report_balance_current AS SELECT order_id, channel FROM balance_current;
CREATE VIEW report_balance_history AS
SELECT order_id, pos, event_time, paid, settled, channel, currency FROM balance_history;
CREATE VIEW report_writeoffs AS SELECT order_id, currency, amount, event_time FROM writeoffs;
CREATE VIEW report_mismatch_events AS
SELECT order_id, currency, reason, kind, event_time FROM mismatch_events;
CREATE VIEW report_ageing_groups_by_day AS SELECT * FROM ageing_groups_by_day;

-- The workbench's overview reads 0008's exposure per customer and the credit events and
-- customers beside it (services/web/queries.py).
GRANT SELECT ON open_by_customer, credit_events, customers TO o2c_web;
