#!/bin/sh
# Runs one MongoDB replica-set member with authentication. mongod refuses a key file that
# others can read, and mounted secrets are shared-readable: a private copy is made first.
# Used by deploy/k8s and deploy/compose alike (compose mounts it from here: kustomize reads
# nothing outside deploy/k8s).
#
#   MONGO_REPLICA_SET     the set's name (rs0)
#   MONGO_KEYFILE_FILE    the replica set's shared key (a mounted secret)
#   MONGO_FIRST_MEMBER    the host name of the member that creates the administrator (the
#                         image's MONGO_INITDB_ROOT_*); the others must start empty, since a
#                         replica set is initiated only with members that hold no data
#   MONGO_TRANSACTION_LIFETIME_SECONDS
#                         how long a transaction may sit idle before the server aborts it
#                         (default 10; MongoDB's own is 60): a service replica killed inside a
#                         transaction keeps what it wrote locked for that long, stalling the
#                         surviving replicas' writes to the same counters
set -eu
if [ -n "${MONGO_FIRST_MEMBER:-}" ] && [ "$(hostname)" != "$MONGO_FIRST_MEMBER" ]; then
    unset MONGO_INITDB_ROOT_USERNAME MONGO_INITDB_ROOT_PASSWORD MONGO_INITDB_ROOT_PASSWORD_FILE
fi
keyfile=/tmp/mongo-keyfile
umask 077
cp "${MONGO_KEYFILE_FILE:?set MONGO_KEYFILE_FILE}" "$keyfile"
chmod 0400 "$keyfile"
if [ "$(id -u)" = "0" ]; then
    chown mongodb:mongodb "$keyfile"
fi
exec docker-entrypoint.sh mongod --replSet "${MONGO_REPLICA_SET:?set MONGO_REPLICA_SET}" \
    --keyFile "$keyfile" --bind_ip_all --auth \
    --setParameter "transactionLifetimeLimitSeconds=${MONGO_TRANSACTION_LIFETIME_SECONDS:-10}"
