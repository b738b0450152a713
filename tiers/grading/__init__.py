"""Customer grading (issue 17): the CRM's value data -> tiers, each explained, before a reload.

The pure reference maths in `rfm`, `scorecard`, `value_share`, `rules` and `migration`; the
`[grading]` settings in `config`; reading files into DuckDB tables (the optional extra
`tierline[grading]`) in `inputs`; every method as SQL over those tables in `engine` (held equal
to the reference by tests/grading/test_engine.py); one run end to end in `run`. Importing this
package does not import DuckDB: only `inputs` does.
"""
