"""Reports: results.json -> report.md and PNG plots."""
