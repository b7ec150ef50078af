"""The tools around the migration, apart from its runtime: the synthetic POCO platform
(``seed``), the dress rehearsal (``rehearsal``), the benchmark (``bench``) and Airflow
started as local processes (``local_airflow``). The runtime never imports them."""
