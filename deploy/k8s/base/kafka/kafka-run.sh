#!/bin/sh
# Runs one Apache Kafka node in KRaft mode (broker and controller in one process) with SASL/SCRAM
# on the client listener and ACLs enforced. Used by deploy/k8s and deploy/compose alike (compose
# mounts it from here: kustomize reads nothing outside deploy/k8s). Settings come from the
# environment:
#
#   KAFKA_CLUSTER_ID            the cluster's id (same on every node; `kafka-storage.sh random-uuid`)
#   KAFKA_NODE_ID               this node's id; default: the ordinal ending the host name (kafka-2 -> 2)
#   KAFKA_CONTROLLER_VOTERS     id@host:9093,... of every controller
#   KAFKA_CONTROLLER_BIND       address the controller listener binds (default: all; a single
#                               node binds 127.0.0.1 and names itself 1@127.0.0.1:9093)
#   KAFKA_ADVERTISED_HOST       the name clients use for this node; default: the host name
#   KAFKA_REPLICATION_FACTOR    replicas of internal and new topics (1 for a single node)
#   KAFKA_ADMIN_PASSWORD_FILE   the `admin` super user's SCRAM password (a mounted secret)
#   KAFKA_DATA_DIR              default /var/lib/kafka/data
#
# The controller listener (9093) is PLAINTEXT (KRaft controllers cannot use SCRAM) and its
# ANONYMOUS principal is a super user: keep it off every network but the nodes' own (compose:
# loopback; Kubernetes: the NetworkPolicy admits only kafka pods to 9093).
set -eu

host=$(hostname)
node_id=${KAFKA_NODE_ID:-${host##*-}}
advertised=${KAFKA_ADVERTISED_HOST:-$host}
rf=${KAFKA_REPLICATION_FACTOR:-1}
min_isr=$(( rf > 1 ? rf - 1 : 1 ))
data_dir=${KAFKA_DATA_DIR:-/var/lib/kafka/data}
admin_password=$(cat "${KAFKA_ADMIN_PASSWORD_FILE:?set KAFKA_ADMIN_PASSWORD_FILE}")
: "${KAFKA_CLUSTER_ID:?set KAFKA_CLUSTER_ID}"
: "${KAFKA_CONTROLLER_VOTERS:?set KAFKA_CONTROLLER_VOTERS}"

config=/tmp/server.properties
umask 077
cat > "$config" <<PROPERTIES
process.roles=broker,controller
node.id=${node_id}
controller.quorum.voters=${KAFKA_CONTROLLER_VOTERS}
listeners=CLIENT://:9092,CONTROLLER://${KAFKA_CONTROLLER_BIND:-}:9093
advertised.listeners=CLIENT://${advertised}:9092
listener.security.protocol.map=CLIENT:SASL_PLAINTEXT,CONTROLLER:PLAINTEXT
inter.broker.listener.name=CLIENT
controller.listener.names=CONTROLLER
sasl.enabled.mechanisms=SCRAM-SHA-512
sasl.mechanism.inter.broker.protocol=SCRAM-SHA-512
listener.name.client.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="admin" password="${admin_password}";
authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer
allow.everyone.if.no.acl.found=false
super.users=User:admin;User:ANONYMOUS
log.dirs=${data_dir}
auto.create.topics.enable=false
num.partitions=6
default.replication.factor=${rf}
min.insync.replicas=${min_isr}
offsets.topic.replication.factor=${rf}
transaction.state.log.replication.factor=${rf}
transaction.state.log.min.isr=${min_isr}
group.initial.rebalance.delay.ms=0
PROPERTIES

if [ ! -f "${data_dir}/meta.properties" ]; then
    # The admin's SCRAM credential exists from the first start (KIP-900), so the init job and
    # the other nodes can authenticate before any user was created through the API.
    /opt/kafka/bin/kafka-storage.sh format --config "$config" --cluster-id "$KAFKA_CLUSTER_ID" \
        --add-scram "SCRAM-SHA-512=[name=admin,password=${admin_password}]" --ignore-formatted
fi
export LOG_DIR=/tmp/kafka-logs
exec /opt/kafka/bin/kafka-server-start.sh "$config"
