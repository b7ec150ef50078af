"""The benchmark: ``throughput`` (the moves against COPY and the naive ways) and
``scale_out`` (the bulk DAG on a real scheduler); ``python -m poco_migration_tools.bench``."""
