#!/bin/sh
# One least-privilege login role and one database per service (Dagster, MLflow, Optuna), each role
# owning only its database and no other role (PUBLIC) allowed to connect to it: what `zdte stack
# up` does natively (zdte_assets/apps/stack.py, _provision_postgres).
#
# Runs as the superuser ($POSTGRES_USER) when the Postgres volume is first initialised
# (docker-entrypoint-initdb.d). Names come from docker/stack.env (DAGSTER_PG_USER, DAGSTER_PG_DB,
# ...), passwords from .env (DAGSTER_PG_PASSWORD, ...): never from this file. Idempotent, like
# `up`: run again (`docker compose exec postgres /docker-entrypoint-initdb.d/10-zdte-databases.sh`)
# it resets the passwords to the environment's and keeps existing roles and databases.
set -eu

provision() {  # role database password
  psql -v ON_ERROR_STOP=1 --no-psqlrc --quiet \
    --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
    -v role="$1" -v db="$2" -v password="$3" <<'SQL'
SELECT format('CREATE ROLE %I', :'role')
WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'role') \gexec
ALTER ROLE :"role" LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD :'password';
SELECT format('CREATE DATABASE %I OWNER %I', :'db', :'role')
WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'db') \gexec
REVOKE ALL ON DATABASE :"db" FROM PUBLIC;
SQL
}

provision "${DAGSTER_PG_USER:?}" "${DAGSTER_PG_DB:?}" "${DAGSTER_PG_PASSWORD:?}"
provision "${MLFLOW_PG_USER:?}" "${MLFLOW_PG_DB:?}" "${MLFLOW_PG_PASSWORD:?}"
provision "${OPTUNA_PG_USER:?}" "${OPTUNA_PG_DB:?}" "${OPTUNA_PG_PASSWORD:?}"
