-- exception_state_refresh (0012) finds each mismatch's detection by mismatch_id among the
-- `detected` events. Before the statistics of mismatch_events exist (a rebuild, a new
-- schema catching up: autovacuum analyses it only later) the planner took the partial
-- index of 0005, led by event_time, for that condition and scanned all of it for each
-- mismatch: a batch's refresh grew with the table (3 s for 3,600 mismatches at 31,000
-- events, 280 us a row over a rebuild's first 40,000). An index led by mismatch_id with
-- the same predicate is the one any plan takes, with or without statistics.
CREATE INDEX mismatch_events_detection ON mismatch_events (mismatch_id, pos)
    WHERE kind = 'detected';
