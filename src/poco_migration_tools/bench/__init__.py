"""The benchmark: ``throughput`` (the moves against COPY and dlt, ``peer``) and
``scale_out`` (the bulk DAG on a real scheduler); ``python -m poco_migration_tools.bench``."""
