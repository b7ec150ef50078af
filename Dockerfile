# The migration's Airflow image: the official Airflow 3.3.2 image plus this
# project's package (plugins/poco_migration) and its pinned stack.
FROM apache/airflow:3.3.2-python3.11
COPY --chown=airflow:root pyproject.toml README.md /opt/poco-migration/
COPY --chown=airflow:root plugins /opt/poco-migration/plugins
RUN pip install --no-cache-dir -e "/opt/poco-migration[deploy]"
