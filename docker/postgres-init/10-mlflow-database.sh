#!/bin/sh
# Runs once, when the postgres volume is first created: a second database for MLflow beside
# the hpo study store (POSTGRES_DB, made by the image itself).
set -eu
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
  -c "CREATE DATABASE \"${MLFLOW_DB:-mlflow}\" OWNER \"$POSTGRES_USER\";"
