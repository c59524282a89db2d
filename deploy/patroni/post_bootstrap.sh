#!/bin/sh
# Patroni runs this once, on the node that creates the cluster: the gateway's own role
# and database (the gateway's `migrate` makes the schema). $1 is a connection string.
set -eu
psql "$1" -v ON_ERROR_STOP=1 -v pw="$CHECKIN_DB_PASSWORD" <<'SQL'
CREATE ROLE checkin LOGIN PASSWORD :'pw';
CREATE DATABASE checkin OWNER checkin;
SQL
