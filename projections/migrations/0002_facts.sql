-- Facts as the projection received them. `pos` is the Kafka offset: every event about one
-- key (order, customer, mismatch) is on one partition, so it orders them.

CREATE TABLE customers (
    customer_id        text PRIMARY KEY,
    name               text NOT NULL,
    region             text,
    segment            text,
    credit_limit       numeric,
    currency           text,
    payment_terms_days integer NOT NULL,
    pos                bigint NOT NULL
);

CREATE TABLE orders (
    order_id      text PRIMARY KEY,
    customer_id   text,
    channel       text,
    region        text,
    currency      text,
    placed_at     timestamptz,
    placed_total  numeric,
    amended_total numeric,
    amended_pos   bigint,
    cancelled_at  timestamptz
);
CREATE INDEX orders_placed_day ON orders (((placed_at AT TIME ZONE 'UTC')::date));

-- Every balance.changed: the history from which ageing and DSO are computed as of any day.
CREATE TABLE balance_history (
    event_id     text PRIMARY KEY,
    order_id     text NOT NULL,
    customer_id  text,
    channel      text,
    region       text,
    currency     text NOT NULL,
    receivable   numeric NOT NULL,
    paid         numeric NOT NULL,
    refunded     numeric NOT NULL,
    settled      numeric NOT NULL,
    open_balance numeric NOT NULL,
    status       text NOT NULL,
    due_date     date,
    event_time   timestamptz NOT NULL,
    pos          bigint NOT NULL
);
CREATE INDEX balance_history_order ON balance_history (order_id, pos);

-- The latest balance of each order (the highest pos wins, whatever the arrival order).
CREATE TABLE balance_current (
    order_id     text PRIMARY KEY,
    customer_id  text,
    channel      text,
    region       text,
    currency     text NOT NULL,
    receivable   numeric NOT NULL,
    paid         numeric NOT NULL,
    refunded     numeric NOT NULL,
    settled      numeric NOT NULL,
    open_balance numeric NOT NULL,
    status       text NOT NULL,
    due_date     date,
    event_time   timestamptz NOT NULL,
    pos          bigint NOT NULL
);
CREATE INDEX balance_current_customer ON balance_current (customer_id);

CREATE TABLE order_matches (
    event_id   text PRIMARY KEY,
    order_id   text NOT NULL,
    currency   text NOT NULL,
    event_time timestamptz NOT NULL
);
CREATE INDEX order_matches_order ON order_matches (order_id);

CREATE TABLE writeoffs (
    event_id   text PRIMARY KEY,
    order_id   text NOT NULL,
    amount     numeric NOT NULL,
    currency   text NOT NULL,
    reason     text NOT NULL,
    event_time timestamptz NOT NULL
);

-- detected / assigned / resolved, in log order per mismatch.
CREATE TABLE mismatch_events (
    event_id    text PRIMARY KEY,
    mismatch_id text NOT NULL,
    kind        text NOT NULL CHECK (kind IN ('detected', 'assigned', 'resolved')),
    event_time  timestamptz NOT NULL,
    pos         bigint NOT NULL,
    reason      text,
    severity    text,
    currency    text,
    expected    numeric,
    actual      numeric,
    difference  numeric,
    order_id    text,
    payment_id  text,
    payout_id   text,
    line_id     text,
    customer_id text,
    owner       text,
    resolution  text,
    note        text
);
CREATE INDEX mismatch_events_mismatch ON mismatch_events (mismatch_id, pos);

CREATE TABLE credit_events (
    event_id     text PRIMARY KEY,
    customer_id  text NOT NULL,
    kind         text NOT NULL CHECK (kind IN ('breached', 'restored')),
    currency     text NOT NULL,
    credit_limit numeric NOT NULL,
    exposure     numeric NOT NULL,
    at           timestamptz NOT NULL,
    pos          bigint NOT NULL
);

-- Business days closed (o2c.day.closed.v1): the read side's notion of "today".
CREATE TABLE closed_days (
    day date PRIMARY KEY
);

-- DSO alerts already decided, so a restart or a rebuild never publishes one twice
-- (an outbox: `published` turns true once the broker has acknowledged the event).
CREATE TABLE dso_alerts (
    day       date    NOT NULL,
    currency  text    NOT NULL,
    event_id  text    NOT NULL,
    dso_days  numeric NOT NULL,
    payload   bytea   NOT NULL,  -- the encoded o2c.dso.target_exceeded.v1 event
    published boolean NOT NULL DEFAULT false,
    PRIMARY KEY (day, currency)
);
