-- Open receivables per currency, a contract view for the Finance dashboard's "Open
-- receivables" panel: summing open_items on each query passed over every open balance
-- (210 ms at 1,000,000 orders); open_by_customer (0008) holds the same sums per customer.
CREATE VIEW open_receivables AS
SELECT currency, sum(exposure) AS open_amount, sum(open_orders)::bigint AS open_items
FROM open_by_customer
WHERE open_orders > 0
GROUP BY currency;
