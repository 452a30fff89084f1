-- The currencies the read models know, without a pass over every balance (issue #20): the
-- Finance dashboard's currency variable read every open item and the whole daily report
-- (230-380 ms at 1,000,000 orders), `o2c report dso --as-of` every balance snapshot.
-- `currencies` (0004) holds every currency of a balance, inserted in the transaction that
-- writes the balance, so it lists exactly what `SELECT DISTINCT currency FROM
-- balance_history` does.

-- The same rows as 0007's definition, from the table.
CREATE OR REPLACE VIEW report_currencies AS SELECT currency FROM currencies;

-- A contract view: every currency of a balance or of a closed day's reconciliation. A
-- currency seen only today, in no balance yet, appears once its day closes.
CREATE VIEW known_currencies AS
SELECT currency FROM currencies
UNION
SELECT currency FROM recon_by_day WHERE currency IS NOT NULL;
