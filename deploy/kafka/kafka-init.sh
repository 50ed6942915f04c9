#!/bin/bash
# One-shot (service kafka-init): the SCRAM user of every demat service group and its ACLs.
# Idempotent: run again after adding a group or rotating a password (/run/secrets/kafka-*).
set -euo pipefail
umask 077
P=${DEMAT_TOPIC_PREFIX:-demat}
B=kafka:9092
admin=/tmp/admin.properties
cat > "$admin" <<PROPS
security.protocol=SASL_SSL
sasl.mechanism=SCRAM-SHA-512
ssl.truststore.type=PEM
ssl.truststore.location=/run/secrets/kafka-ca.pem
sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="admin" password="$(cat /run/secrets/kafka-admin)";
PROPS
kcfg() { /opt/kafka/bin/kafka-configs.sh --bootstrap-server "$B" --command-config "$admin" "$@"; }
acl() { /opt/kafka/bin/kafka-acls.sh --bootstrap-server "$B" --command-config "$admin" --add "$@"; }

# user: its password file, the topics it reads (with its consumer groups), those it writes.
# A trailing '.' means every topic (or group) of that prefix.
grant() {  # grant USER "READ TOPICS" "GROUPS" "WRITE TOPICS"
  local user=$1 principal="User:demat-$1"
  kcfg --alter --entity-type users --entity-name "demat-$user" \
    --add-config "SCRAM-SHA-512=[iterations=8192,password=$(cat "/run/secrets/kafka-$user")]"
  # every process lists and creates the bus's topics at start (ensure_topics)
  acl --allow-principal "$principal" --operation Describe --operation Create \
    --topic "$P." --resource-pattern-type prefixed
  for t in $2; do acl --allow-principal "$principal" --operation Read --topic "$(name "$t")" $(pattern "$t"); done
  for g in $3; do acl --allow-principal "$principal" --operation Read --group "$(name "$g")" $(pattern "$g"); done
  for t in $4; do acl --allow-principal "$principal" --operation Write --topic "$(name "$t")" $(pattern "$t"); done
}
name() { printf '%s' "$P.$1"; }
pattern() { case $1 in *.) printf -- '--resource-pattern-type prefixed';; *) printf -- '--resource-pattern-type literal';; esac; }

#      user      reads                 consumer groups                  writes
grant  intake    "submit"              "submit"                         "router dlq"
grant  router    "router"              "router"                         "step. delay. journal dlq"
grant  steps     "step."               "steps"                          "router dlq archive.batch"
grant  journal   "journal dlq"         "journal.index dlq.index"        "dlq"
grant  delays    "delay."              "delay"                          "router step. webhooks dlq"
grant  sealer    "journal"             "journal.sealer"                 "router dlq"
grant  webhooks  "journal webhooks"    "webhooks"                       "webhooks delay. dlq"
grant  batcher   "archive.batch"       "archive.batch.batcher"          "router dlq"
# the HTTP API: submissions, operator replays (router, steps, webhooks; a journal dead
# letter is replayed with the admin), the journal's event stream
grant  api       "journal"             ""                               "submit router step. webhooks"
echo "demat Kafka users and ACLs are in place"
