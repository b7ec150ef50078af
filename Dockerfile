# The migration's Airflow image: the official Airflow 3.3.2 image plus this project's
# package (src/poco_migration, installed, not editable) with the Celery provider.
#
# Airflow's guidance for custom images: never let pip move the image's Airflow
# (apache-airflow==${AIRFLOW_VERSION} among the targets), and resolve the transitive
# dependencies against Airflow's constraints file for this version. The project pins
# some packages itself (pyproject.toml, the one place): those lines are taken out of
# the constraints so that the tested pins win; every other package follows Airflow's.
FROM apache/airflow:3.3.2-python3.11
ARG AIRFLOW_CONSTRAINTS=https://raw.githubusercontent.com/apache/airflow/constraints-3.3.2/constraints-3.11.txt
ARG OWN_PINS="sqlalchemy|psycopg|psycopg-binary|great-expectations|requests|pyyaml|httpx2|alembic|celery|apache-airflow-providers-(standard|smtp|celery|fab)"
COPY --chown=airflow:root pyproject.toml README.md /opt/poco-migration/
COPY --chown=airflow:root src /opt/poco-migration/src
RUN curl -fsSL "${AIRFLOW_CONSTRAINTS}" | grep -viE "^(${OWN_PINS})==" > /tmp/constraints.txt \
 && pip install --no-cache-dir --constraint /tmp/constraints.txt \
      "apache-airflow==${AIRFLOW_VERSION}" "/opt/poco-migration[deploy]" \
 && rm /tmp/constraints.txt
# The DAGs, the plugin's registration, the plan, the redirect rules and the suites are
# files of the checkout (docker-compose.yaml mounts them); the package finds them here.
ENV POCO_MIGRATION_PLAN=/opt/poco-migration/config/plan.yaml \
    POCO_MIGRATION_REDIRECTS=/opt/poco-migration/config/redirects.yaml \
    POCO_MIGRATION_EXPECTATIONS=/opt/poco-migration/expectations
