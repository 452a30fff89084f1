-- Where each projection stands in each topic partition, written in the same transaction
-- as the rows it produced, and the ids of every event it has applied (a republished event
-- with a known id is skipped).
CREATE TABLE projection_offsets (
    projection  text    NOT NULL,
    topic       text    NOT NULL,
    partition   integer NOT NULL,
    next_offset bigint  NOT NULL,
    PRIMARY KEY (projection, topic, partition)
);

CREATE TABLE processed_events (
    projection text NOT NULL,
    event_id   text NOT NULL,
    PRIMARY KEY (projection, event_id)
);

-- Values the views read (the DSO target); written by `o2c projections run` from settings.
CREATE TABLE read_settings (
    key   text PRIMARY KEY,
    value text NOT NULL
);
