"""zklock's benchmark suite: ``python -m benchmarks.run [--quick] [--ensemble] [--hosts H] [--json F]``.

See ``docs/performance.md`` for what it measures, how, and the figures of a run.
"""
