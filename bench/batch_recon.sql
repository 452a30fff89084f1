-- The nightly batch reconciliation a finance team runs instead of o2c-matcher: every event
-- of the period loaded into one table (`raw`, one JSON document a row), then set-based SQL
-- over the whole history as of the last closed business day. It follows the contract's
-- rules (../shared/o2c-contract.md, "Matching semantics") as an analyst would write them
-- in SQL, with the simplifications such scripts make:
--   * a payment without order_id is tied to an order only by an `ORD-…` reference;
--   * a bank line is applied by a payout, order or invoice number in its text, else by
--     the payer's account or exact payer name and one open item of exactly its amount;
--     no fuzzy names, no combinations of open items;
--   * everything is decided once, at the end, from the full history (no arrival order).
-- Results: `finding` (reason + the ids the truth keys it by) and `applied` (bank line →
-- order, amount) and `payout_line` (bank line → payout).

CREATE TABLE e AS
SELECT DISTINCT ON (doc->>'id')
       doc->>'type' AS type, (doc->>'time')::timestamptz AS at, doc->'data' AS d
FROM raw ORDER BY doc->>'id';

CREATE TABLE today AS
SELECT max((d->>'date')::date) AS day FROM e WHERE type = 'o2c.day.closed.v1';

CREATE TABLE tolerance AS SELECT 0.50::numeric AS amount, 0.01::numeric AS fee;

-- Customers: the latest upsert; their accounts and payer names for bank lines.
CREATE TABLE customer AS
SELECT DISTINCT ON (d->>'customer_id') d->>'customer_id' AS customer_id, d
FROM e WHERE type = 'o2c.customer.upserted.v1' ORDER BY d->>'customer_id', at DESC;

CREATE TABLE payer_account AS
SELECT a AS account, min(customer_id) AS customer_id
FROM customer, jsonb_array_elements_text(coalesce(d->'bank_accounts', '[]')) a
GROUP BY a HAVING count(DISTINCT customer_id) = 1;

CREATE TABLE payer_name AS
SELECT lower(trim(n)) AS name, min(customer_id) AS customer_id
FROM customer,
     jsonb_array_elements_text(coalesce(d->'payer_names', '[]') || jsonb_build_array(d->>'name')) n
GROUP BY lower(trim(n)) HAVING count(DISTINCT customer_id) = 1;

-- Orders: placed, latest amendment, cancellation, invoices less credit notes.
CREATE TABLE amended AS
SELECT DISTINCT ON (d->>'order_id') d->>'order_id' AS order_id,
       (d->>'total_amount')::numeric AS total
FROM e WHERE type = 'o2c.order.amended.v1' ORDER BY d->>'order_id', at DESC;

CREATE TABLE invoiced AS
SELECT i.order_id, i.currency, i.amount - coalesce(n.amount, 0) AS amount, i.due_date
FROM (SELECT d->>'order_id' AS order_id, min(d->>'currency') AS currency,
             sum((d->>'amount')::numeric) AS amount, min((d->>'due_date')::date) AS due_date
      FROM e WHERE type = 'o2c.invoice.issued.v1' GROUP BY 1) i
LEFT JOIN (SELECT d->>'order_id' AS order_id, sum((d->>'amount')::numeric) AS amount
           FROM e WHERE type = 'o2c.credit_note.issued.v1' GROUP BY 1) n USING (order_id);

CREATE TABLE cancelled AS
SELECT DISTINCT d->>'order_id' AS order_id FROM e WHERE type = 'o2c.order.cancelled.v1';

CREATE TABLE orders AS
SELECT DISTINCT ON (p.d->>'order_id')
       p.d->>'order_id' AS order_id, p.d->>'customer_id' AS customer_id,
       p.d->>'currency' AS currency,
       coalesce(a.total, (p.d->>'total_amount')::numeric) AS total,
       i.amount AS invoiced,
       coalesce(i.due_date,
                (p.d->>'placed_at')::timestamptz::date
                + coalesce((p.d->>'payment_terms_days')::int, 0)) AS due_date,
       (p.d->>'placed_at')::timestamptz AS placed_at,
       x.order_id IS NOT NULL AS cancelled
FROM e p
LEFT JOIN amended a ON a.order_id = p.d->>'order_id'
LEFT JOIN invoiced i ON i.order_id = p.d->>'order_id'
LEFT JOIN cancelled x ON x.order_id = p.d->>'order_id'
WHERE p.type = 'o2c.order.placed.v1'
ORDER BY p.d->>'order_id', p.at;
ALTER TABLE orders ADD PRIMARY KEY (order_id);
ALTER TABLE orders ADD COLUMN receivable numeric;
UPDATE orders SET receivable = CASE WHEN cancelled THEN 0 ELSE coalesce(invoiced, total) END;

-- Payments: one row per payment_id (a redelivery counts once), tied to an order.
CREATE TABLE capture_event AS
SELECT DISTINCT ON (d->>'payment_id')
       d->>'payment_id' AS payment_id,
       coalesce(d->>'order_id', substring(d->>'reference' from '\m(ORD-[A-Za-z0-9][A-Za-z0-9-]*)'))
           AS order_id,
       d->>'method' AS method, d->>'currency' AS currency,
       (d->>'amount')::numeric AS amount, (d->>'fee_amount')::numeric AS fee,
       (d->>'captured_at')::timestamptz AS captured_at
FROM e WHERE type = 'o2c.payment.captured.v1'
ORDER BY d->>'payment_id', at;

CREATE TABLE reversal AS
SELECT d->>'payment_id' AS payment_id, sum((d->>'amount')::numeric) AS amount
FROM e WHERE type = 'o2c.payment.reversed.v1' GROUP BY 1;

CREATE TABLE capture AS
SELECT c.*, c.amount - coalesce(r.amount, 0) AS net
FROM capture_event c LEFT JOIN reversal r USING (payment_id);
CREATE INDEX ON capture (order_id);
CREATE INDEX ON capture (payment_id);

CREATE TABLE refunded AS
SELECT d->>'order_id' AS order_id, sum((d->>'amount')::numeric) AS amount
FROM e WHERE type = 'o2c.refund.issued.v1' GROUP BY 1;

CREATE TABLE chargeback AS
SELECT o.d->>'chargeback_id' AS chargeback_id, o.d->>'order_id' AS order_id,
       o.d->>'payment_id' AS payment_id, (o.d->>'amount')::numeric AS amount,
       r.d->>'outcome' AS outcome
FROM e o
LEFT JOIN e r ON r.type = 'o2c.chargeback.resolved.v1'
             AND r.d->>'chargeback_id' = o.d->>'chargeback_id'
WHERE o.type = 'o2c.chargeback.opened.v1';

-- Payouts and their items.
CREATE TABLE payout AS
SELECT DISTINCT ON (d->>'payout_id') d->>'payout_id' AS payout_id, d->>'currency' AS currency,
       (d->>'net_amount')::numeric AS net, (d->>'payout_date')::date AS payout_date, d->'items' AS items
FROM e WHERE type = 'o2c.payout.reported.v1' ORDER BY d->>'payout_id', at;

CREATE TABLE payout_item AS
SELECT p.payout_id, i->>'payment_id' AS payment_id, i->>'order_id' AS order_id, i->>'kind' AS kind,
       (i->>'gross')::numeric AS gross, (i->>'fee')::numeric AS fee
FROM payout p, jsonb_array_elements(p.items) i;
CREATE INDEX ON payout_item (payment_id);
CREATE INDEX ON payout_item (payout_id);

-- Bank lines: what their text names. (A payout netting to a debit is paid by a debit.)
CREATE TABLE line AS
SELECT d->>'line_id' AS line_id, (d->>'amount')::numeric AS amount, d->>'currency' AS currency,
       (d->>'booking_date')::date AS booking_date,
       d->>'counterparty_account' AS account, lower(trim(d->>'counterparty_name')) AS payer,
       concat_ws(' ', d->>'remittance_info', d->>'end_to_end_id', d->>'bank_reference') AS text
FROM (SELECT DISTINCT ON (d->>'line_id') d FROM e WHERE type = 'o2c.bank_line.booked.v1'
      ORDER BY d->>'line_id', at) l;

ALTER TABLE line ADD COLUMN payout_ref text, ADD COLUMN order_ref text, ADD COLUMN invoice_ref text;
UPDATE line SET payout_ref = substring(text from '\m(PO-[A-Za-z0-9][A-Za-z0-9-]*|po_[A-Za-z0-9]{6,})'),
                order_ref = substring(text from '\m(ORD-[A-Za-z0-9][A-Za-z0-9-]*)'),
                invoice_ref = substring(text from '\m(INV-[A-Za-z0-9][A-Za-z0-9-]*)');

CREATE TABLE payout_line AS
SELECT l.line_id, l.payout_ref AS payout_id, l.amount
FROM line l WHERE l.payout_ref IS NOT NULL;
CREATE INDEX ON payout_line (payout_id);

-- A payout is settled once a bank line carries its net amount.
CREATE TABLE payout_matched AS
SELECT DISTINCT ON (p.payout_id) p.payout_id, l.line_id
FROM payout p JOIN payout_line l USING (payout_id)
WHERE abs(l.amount - p.net) <= (SELECT amount FROM tolerance)
ORDER BY p.payout_id, l.line_id;

-- Open items before bank lines: receivable less what card/wallet/voucher payments paid.
CREATE TABLE paid_ex_bank AS
SELECT o.order_id,
       coalesce(c.amount, 0) - coalesce(r.amount, 0) - coalesce(b.amount, 0) AS paid
FROM orders o
LEFT JOIN (SELECT c.order_id, sum(c.net) AS amount
           FROM capture c JOIN orders o USING (order_id)
           WHERE c.currency = o.currency AND c.method <> 'bank_transfer' GROUP BY 1) c
       USING (order_id)
LEFT JOIN refunded r USING (order_id)
LEFT JOIN (SELECT order_id, sum(amount) AS amount FROM chargeback
           WHERE outcome = 'lost' GROUP BY 1) b USING (order_id);

CREATE TABLE open_item AS
SELECT o.order_id, o.customer_id, o.currency, o.receivable - p.paid AS open, o.placed_at
FROM orders o JOIN paid_ex_bank p USING (order_id)
WHERE NOT o.cancelled AND o.receivable - p.paid > (SELECT amount FROM tolerance);

-- Lines not naming a payout: by order number, by invoice number, else payer + exact amount.
CREATE TABLE invoice AS
SELECT d->>'invoice_id' AS invoice_id, min(d->>'order_id') AS order_id
FROM e WHERE type = 'o2c.invoice.issued.v1' GROUP BY 1;

CREATE TABLE line_payer AS
SELECT l.*, coalesce(a.customer_id, n.customer_id) AS customer_id,
       coalesce(l.order_ref, i.order_id) AS named_order
FROM line l
LEFT JOIN payer_account a ON a.account = l.account
LEFT JOIN payer_name n ON n.name = l.payer
LEFT JOIN invoice i ON i.invoice_id = l.invoice_ref
WHERE l.payout_ref IS NULL AND l.amount > 0;

CREATE TABLE line_candidates AS
SELECT l.line_id, count(i.order_id) AS candidates, min(i.order_id) AS order_id
FROM line_payer l
LEFT JOIN open_item i ON i.customer_id = l.customer_id AND i.currency = l.currency
                     AND i.open = l.amount
WHERE l.named_order IS NULL
GROUP BY l.line_id;

CREATE TABLE applied AS
SELECT line_id, named_order AS order_id, amount FROM line_payer WHERE named_order IS NOT NULL
UNION ALL
SELECT c.line_id, c.order_id, l.amount
FROM line_candidates c JOIN line_payer l USING (line_id) WHERE c.candidates = 1;

-- Paid, with the bank: captures (bank transfers only through their bank line), bank lines
-- applied, less refunds and lost chargebacks.
CREATE TABLE applied_sum AS SELECT order_id, sum(amount) AS amount FROM applied GROUP BY 1;

CREATE TABLE balance AS
SELECT o.*, p.paid + coalesce(a.amount, 0) AS paid
FROM orders o JOIN paid_ex_bank p USING (order_id) LEFT JOIN applied_sum a USING (order_id);

CREATE TABLE finding (reason text, order_id text, payment_id text, payout_id text, line_id text);

INSERT INTO finding (reason, order_id, payment_id)
SELECT 'CURRENCY_MISMATCH', c.order_id, c.payment_id
FROM capture c JOIN orders o USING (order_id)
WHERE c.currency <> o.currency AND c.net > 0;

INSERT INTO finding (reason, payment_id)
SELECT 'PAYMENT_WITHOUT_ORDER', c.payment_id
FROM capture c, today t
WHERE (c.order_id IS NULL OR NOT EXISTS (SELECT 1 FROM orders o WHERE o.order_id = c.order_id))
  AND t.day > c.captured_at::date;

INSERT INTO finding (reason, order_id, payment_id)
SELECT 'CHARGEBACK', order_id, payment_id FROM chargeback WHERE outcome IS NULL;

INSERT INTO finding (reason, order_id)
SELECT 'PAYMENT_ON_CANCELLED_ORDER', b.order_id
FROM balance b WHERE b.cancelled AND b.paid > (SELECT amount FROM tolerance);

INSERT INTO finding (reason, order_id)
SELECT 'REFUND_EXCEEDS_PAID', r.order_id
FROM refunded r
LEFT JOIN (SELECT order_id, sum(net) AS amount FROM capture GROUP BY 1) c USING (order_id)
LEFT JOIN applied_sum a USING (order_id)
WHERE r.amount - coalesce(c.amount, 0) - coalesce(a.amount, 0) > (SELECT amount FROM tolerance);

INSERT INTO finding (reason, order_id)
SELECT 'INVOICE_ORDER_MISMATCH', order_id
FROM orders WHERE NOT cancelled AND invoiced IS NOT NULL
              AND abs(invoiced - total) > (SELECT amount FROM tolerance);

-- Over- and underpayment; an overpayment by a second capture of an earlier capture's
-- amount is a duplicate payment.
CREATE TABLE duplicate AS
SELECT DISTINCT ON (order_id) order_id, payment_id, net
FROM (SELECT c.*, count(*) OVER (PARTITION BY order_id, net ORDER BY captured_at, payment_id) AS nth
      FROM capture c WHERE c.net > 0) x
WHERE nth > 1 ORDER BY order_id, captured_at, payment_id;

INSERT INTO finding (reason, order_id, payment_id)
SELECT CASE WHEN d.order_id IS NOT NULL
                 AND d.net <= b.paid - b.receivable + (SELECT amount FROM tolerance)
            THEN 'DUPLICATE_PAYMENT' ELSE 'OVERPAID' END,
       b.order_id,
       CASE WHEN d.order_id IS NOT NULL
                 AND d.net <= b.paid - b.receivable + (SELECT amount FROM tolerance)
            THEN d.payment_id END
FROM balance b LEFT JOIN duplicate d USING (order_id)
WHERE NOT b.cancelled AND b.paid - b.receivable > (SELECT amount FROM tolerance);

INSERT INTO finding (reason, order_id)
SELECT 'UNDERPAID', b.order_id
FROM balance b, today t
WHERE NOT b.cancelled AND b.paid > 0 AND t.day >= b.due_date
  AND b.receivable - b.paid > (SELECT amount FROM tolerance);

-- Settlement: payouts against the bank, captures against payouts, fees against captures.
INSERT INTO finding (reason, payout_id)
SELECT 'PAYOUT_AMOUNT_MISMATCH', p.payout_id
FROM payout p
WHERE abs((SELECT sum(gross - fee) FROM payout_item i WHERE i.payout_id = p.payout_id) - p.net)
      > (SELECT amount FROM tolerance)
   OR (EXISTS (SELECT 1 FROM payout_line l WHERE l.payout_id = p.payout_id)
       AND NOT EXISTS (SELECT 1 FROM payout_line l WHERE l.payout_id = p.payout_id
                          AND abs(l.amount - p.net) <= (SELECT amount FROM tolerance)));

INSERT INTO finding (reason, payout_id)
SELECT 'PAYOUT_NOT_IN_BANK', p.payout_id
FROM payout p, today t
WHERE t.day >= p.payout_date + 2
  AND NOT EXISTS (SELECT 1 FROM payout_line l WHERE l.payout_id = p.payout_id);

INSERT INTO finding (reason, order_id, payment_id)
SELECT 'PAYMENT_NOT_SETTLED', c.order_id, c.payment_id
FROM capture c, today t
WHERE c.method IN ('card', 'alipay', 'wechat_pay', 'paypal') AND c.net > 0
  AND t.day >= c.captured_at::date + 2
  AND EXISTS (SELECT 1 FROM orders o WHERE o.order_id = c.order_id)
  AND NOT EXISTS (SELECT 1 FROM payout_item i JOIN payout_matched USING (payout_id)
                  WHERE i.payment_id = c.payment_id);

INSERT INTO finding (reason, payout_id, payment_id)
SELECT 'FEE_MISMATCH', i.payout_id, i.payment_id
FROM payout_item i JOIN capture c USING (payment_id)
WHERE i.kind = 'charge' AND c.fee IS NOT NULL
  AND abs(abs(i.fee) - c.fee) > (SELECT fee FROM tolerance);

-- Bank lines nobody could place.
INSERT INTO finding (reason, line_id)
SELECT 'UNMATCHED_BANK_LINE', l.line_id
FROM line l
WHERE (l.payout_ref IS NOT NULL
       AND NOT EXISTS (SELECT 1 FROM payout p WHERE p.payout_id = l.payout_ref))
   OR l.line_id IN (SELECT line_id FROM line_candidates WHERE candidates = 0);

INSERT INTO finding (reason, line_id)
SELECT 'AMBIGUOUS_BANK_LINE', line_id FROM line_candidates WHERE candidates > 1;
