"""The aggregation every study shares: its runs read into one table (rows.py), the statistics (comparisons.py),
the figures (plots.py) and the REPORT (report.py), driven by a study's `Study` (study.py) from its aggregate.py
(studies/elpv/aggregate.py, studies/fmnist_lt/aggregate.py)."""
