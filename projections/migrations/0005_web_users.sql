-- The finance workbench (`o2c web`): its users, the actions it published, and the
-- suggestions of each detection, which the queue offers to apply.

-- Users and their roles: viewers read; clerks also assign, resolve and apply suggestions;
-- admins also manage users. Passwords are argon2id hashes (argon2-cffi's encoded form).
-- These rows are no projection of the log: a rebuild carries them over (rebuild.py).
CREATE TABLE web_users (
    name          text PRIMARY KEY CHECK (name ~ '^[A-Za-z0-9._@-]{1,64}$'),
    role          text NOT NULL CHECK (role IN ('viewer', 'clerk', 'admin')),
    password_hash text NOT NULL,
    disabled      boolean NOT NULL DEFAULT false,
    created_at    timestamptz NOT NULL DEFAULT now()
);

-- What a person did through the workbench: the mismatch event it published, so the queue
-- can say "pending" until the projection has applied that event (mismatch_events).
CREATE TABLE web_actions (
    event_id     text PRIMARY KEY,
    mismatch_id  text NOT NULL,
    action       text NOT NULL CHECK (action IN ('assign', 'resolve', 'apply')),
    by_user      text NOT NULL,
    published_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX web_actions_mismatch ON web_actions (mismatch_id);

-- The ranked suggestions a detection carried (AMBIGUOUS_BANK_LINE), as on the wire.
ALTER TABLE mismatch_events ADD COLUMN suggestions jsonb;

-- The queue's default order and its keyset pagination.
CREATE INDEX mismatch_events_detected ON mismatch_events (event_time, mismatch_id)
    WHERE kind = 'detected';
