"""Pure monitoring statistics (no I/O): PSI, fairness metrics, performance metrics."""
