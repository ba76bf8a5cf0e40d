#!/bin/sh
# Runs once, when the Postgres volume is first initialised (docker-entrypoint-initdb.d).
# POSTGRES_DB (Dagster's database) already exists; add the MLflow and Optuna databases, owned by
# the same user. Names come from the environment, never from this file.
set -eu
for db in "${MLFLOW_PG_DB:-mlflow}" "${OPTUNA_PG_DB:-optuna}"; do
  psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
    -c "CREATE DATABASE \"$db\" OWNER \"$POSTGRES_USER\""
done
