"""History: the outlier rules, stops and trips of recorded fixes; pure Python, no Flask.

`filter` decides which stored fixes count (stored fixes stay untouched), `stops` finds
where a person stayed, and `timeline` puts both together for a person's day.
"""
