#!/bin/sh
# Prepares the cluster for the services, idempotently (run it again after adding a service):
# the platform's topics with a fixed partition count and the wanted replication factor, one
# SCRAM user per service, and ACLs giving each service only the topics and consumer groups it
# uses. Used by deploy/k8s and deploy/compose alike (compose mounts it from here: kustomize
# reads nothing outside deploy/k8s).
#
#   KAFKA_BOOTSTRAP             host:9092 of the client listener
#   KAFKA_ADMIN_PASSWORD_FILE   the `admin` super user's password
#   KAFKA_REPLICATION_FACTOR    replicas per topic (default 1)
#   KAFKA_PARTITIONS            partitions per topic: the platform's one count (default 6)
#   SECRETS_DIR                 holds kafka_<service>_password for every service (default /run/secrets)
#   KAFKA_BIN_DIR               Kafka's command-line tools (default /opt/kafka/bin)
#
# Each service gets exactly what its code uses (tests/deploy/test_kafka_topics.py runs this
# script against recording stand-ins of the tools and compares with every service's topics):
# Create on every topic it makes at start-up, Write where it publishes, Read where it reads.
# The console has no Kafka user: it uses no topic.
#
# The services create their topics at start-up too (with replication factor 1): creating them
# here first, with the cluster's replication factor, is what makes them durable.
set -eu

bin=${KAFKA_BIN_DIR:-/opt/kafka/bin}
bootstrap=${KAFKA_BOOTSTRAP:?set KAFKA_BOOTSTRAP}
rf=${KAFKA_REPLICATION_FACTOR:-1}
partitions=${KAFKA_PARTITIONS:-6}
secrets=${SECRETS_DIR:-/run/secrets}
admin=${TMPDIR:-/tmp}/admin.properties
umask 077
cat > "$admin" <<PROPERTIES
security.protocol=SASL_PLAINTEXT
sasl.mechanism=SCRAM-SHA-512
sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="admin" password="$(cat "${KAFKA_ADMIN_PASSWORD_FILE:?set KAFKA_ADMIN_PASSWORD_FILE}")";
PROPERTIES

SERVICES="identity projects profiles consent retention"
EVENTS="identity.events projects.events profiles.events consent.events retention.events"

echo "waiting for ${bootstrap}"
until "$bin/kafka-topics.sh" --bootstrap-server "$bootstrap" --command-config "$admin" --list >/dev/null 2>&1; do
    sleep 2
done

topic() {
    "$bin/kafka-topics.sh" --bootstrap-server "$bootstrap" --command-config "$admin" \
        --create --if-not-exists --topic "$1" --partitions "$partitions" --replication-factor "$rf"
}
for events in $EVENTS; do
    topic "$events"
    topic "$events.dlq"
done
for name in retention.commands retention.commands.dlq audit.log audit.log.dlq audit.republish events.heads; do
    topic "$name"
done

acl() {  # acl <service> <operation>... --topic|--group <name> [--resource-pattern-type prefixed]
    principal=$1
    shift
    "$bin/kafka-acls.sh" --bootstrap-server "$bootstrap" --command-config "$admin" --add \
        --allow-principal "User:$principal" "$@" >/dev/null
}
create() {  # create <service> <topic>...: made at start-up, neither read nor written
    service=$1
    shift
    for name in "$@"; do
        acl "$service" --operation Describe --operation Create --topic "$name"
    done
}
produce() {  # produce <service> <topic>...: write (and create, which the services ask at start-up)
    service=$1
    shift
    for name in "$@"; do
        acl "$service" --operation Write --operation Describe --operation Create --topic "$name"
    done
}
subscribe() {  # subscribe <service> <topic>...: read (and create), dead-lettering nothing
    service=$1
    shift
    for name in "$@"; do
        acl "$service" --operation Read --operation Describe --operation Create --topic "$name"
    done
}
consume() {  # consume <service> <topic>...: read, and dead-letter to <topic>.dlq
    service=$1
    shift
    for name in "$@"; do
        subscribe "$service" "$name"
        produce "$service" "$name.dlq"
    done
}

for service in $SERVICES; do
    password=$(cat "$secrets/kafka_${service}_password")
    "$bin/kafka-configs.sh" --bootstrap-server "$bootstrap" --command-config "$admin" --alter \
        --entity-type users --entity-name "$service" \
        --add-config "SCRAM-SHA-512=[password=${password}]" >/dev/null
    # What every service does: publish its events (relay) and its relay's head, obey
    # retention's commands, answer republish requests (re-sent on its events topic). Its
    # events' dead-letter topic is made at start-up; its consumers write to it.
    produce "$service" "$service.events" events.heads
    create "$service" "$service.events.dlq"
    consume "$service" retention.commands
    subscribe "$service" audit.republish
    # Consumer groups: <service>-inbox (and consent-audit, ...), republish-<service>.
    acl "$service" --operation Read --operation Describe --group "$service" --resource-pattern-type prefixed
    acl "$service" --operation Read --operation Describe --group "republish-$service"
done

# Revoked and erased accounts, from identity's events (identity itself does not read them).
consume projects identity.events
# profiles keeps consents and project memberships as read models.
consume profiles identity.events consent.events projects.events
# consent's audit log reads every producer's events (a pattern) and their heads, asks for
# repairs, publishes each appended entry and, on taking over, reads the tail of audit.log to
# skip what its predecessor sent already; it serves requests to publish audit.log entries
# again (audit.republish, read above, in its group consent-audit-republish).
consume consent $EVENTS
subscribe consent events.heads audit.log
produce consent audit.log audit.republish
# retention follows the audit log and every service's answers to its commands, and sends them;
# it asks consent for audit.log entries the topic lost (audit.republish).
consume retention audit.log $EVENTS
produce retention retention.commands audit.republish

echo "kafka: topics, users and ACLs are in place"
