"""Pure statistics for product analytics: intervals, tests, power (``stats``) and always-valid
inference for weekly looks (``sequential``). No I/O; numpy and scipy only."""
