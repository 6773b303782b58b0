"""sepbench's harness: formulas, counting, claims, timing, suites, runner, report, training."""
