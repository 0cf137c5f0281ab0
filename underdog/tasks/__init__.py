"""Tasks: examples, prompt formats and answer checks, plus JSONL schemas with file:line validation."""
