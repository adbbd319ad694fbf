"""Side-by-side benchmarks: each script prints a table and writes JSON into `benchmarks/results/`;
`python -m benchmarks` runs them all into one `all.json`, and `python -m benchmarks.figures`
turns the JSON into the README's Figures section."""
