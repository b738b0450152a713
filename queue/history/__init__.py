"""Call history: the event trail of calls and callbacks, its archive (SQLite, PostgreSQL) and reports.

Engine-independent: the engines emit `events.Event`s, an archiver hands batches to an
`archive.Archive`, and `reports` reads the archive's tallies and timelines.
"""
