"""Customer grading (issue 17): the CRM's value data -> tiers, each explained, before a reload.

Pure maths in `rfm`, `scorecard`, `value_share`, `rules` and `migration`; the `[grading]`
settings in `config`; reading files (DuckDB, the optional extra `tierline[grading]`) in
`inputs`; one run end to end in `run` (`grade_population`, `run_grading`). Importing this
package does not import DuckDB: only `inputs` does, when a run reads files.
"""
