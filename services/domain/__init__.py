"""Matching rules as pure functions over immutable state: no faust, Kafka or psycopg here."""
