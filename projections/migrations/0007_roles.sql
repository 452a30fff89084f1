-- Least privilege (docs/operations.md, "Database roles"). The owner, who runs these
-- migrations, owns every object; `o2c db migrate` creates the NOLOGIN roles below and the
-- login users of each process before the migrations run. Schema names are the caller's
-- (a rebuild migrates a fresh schema beside the live one), hence the dynamic SQL.
--   o2c_projector: reads and writes the read tables (`o2c projections run`, rebuild's runners)
--   o2c_reader:    SELECT on the views only (dashboards, `o2c report`); granted by migrate
--                  on every view after each run, so views added later are included
--   o2c_web:       SELECT on the views and the tables the workbench reads; writes only its
--                  users and the actions it published

-- The views `o2c report` reads beside the dashboards' (reports.py): a reader sees no table,
-- so what it needs of the tables is here, no more columns than it uses.
CREATE VIEW report_orders AS SELECT order_id, channel, region FROM orders;
CREATE VIEW report_customers AS SELECT customer_id, region FROM customers;
CREATE VIEW report_currencies AS SELECT DISTINCT currency FROM balance_history;
CREATE VIEW report_dso_target AS
SELECT coalesce((SELECT value::numeric FROM read_settings WHERE key = 'dso_target_days'), 45)
       AS days;
CREATE VIEW report_ageing_by_day AS SELECT * FROM ageing_by_day;
CREATE VIEW report_materialised_days AS SELECT day FROM materialised_days;

DO $$
DECLARE
    s text := current_schema();
BEGIN
    EXECUTE format('GRANT USAGE ON SCHEMA %I TO o2c_projector, o2c_reader, o2c_web', s);

    -- The projector: every read table, but neither the workbench's own tables nor the
    -- migrations' record.
    EXECUTE format(
        'GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA %I TO o2c_projector', s);
    REVOKE ALL ON web_users, web_actions FROM o2c_projector;
    REVOKE INSERT, UPDATE, DELETE ON schema_migrations FROM o2c_projector;
    -- Tables a later migration adds are the projector's to write, like these.
    EXECUTE format('ALTER DEFAULT PRIVILEGES IN SCHEMA %I'
                   ' GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO o2c_projector', s);

    -- The workbench (services/web/queries.py, users.py): the views (granted by migrate)
    -- and these tables; a table a later migration adds is not its until granted there.
    GRANT SELECT ON exception_queue, mismatch_events, timeline, balance_current,
                    schema_migrations TO o2c_web;
    GRANT SELECT, INSERT ON web_actions TO o2c_web;
    GRANT SELECT, INSERT, UPDATE ON web_users TO o2c_web;
END
$$;
