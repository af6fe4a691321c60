"""Patrol reports and assessment (巡查考核): person-days, grid-days, coverage and scores.

`periods` cuts time into days of the configured zone and does interval arithmetic,
`person_days` reads one person's day from its fixes and shifts (the outlier filter, stops
and distance come from tracker.history: one definition in the product), `grid_days` puts
everyone's time inside each grid together, `coverage` measures how much of a grid the
tracks came near, `rules` scores the results, `export` writes CSV and XLSX, `reports` reads
the database for all of them and `daily` writes yesterday's files (docs/reports.md).
"""
