"""Side-by-side benchmarks of nbinfra against the peers (``python -m benchmarks``)."""
