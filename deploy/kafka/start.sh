#!/bin/bash
# Start the demat Kafka broker: server.properties plus the inter-broker credentials, the
# storage formatted once with the admin's SCRAM credential (KRaft cannot add the first
# SCRAM user any other way), then kafka-server-start. Secrets come from /run/secrets.
set -euo pipefail
umask 077
admin_password=$(cat /run/secrets/kafka-admin)
props=/tmp/demat-server.properties
cp /etc/kafka/demat/server.properties "$props"
printf '%s\n' "listener.name.internal.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username=\"admin\" password=\"${admin_password}\";" >> "$props"
# the admin's client configuration (healthcheck, kafka-init.sh)
cat > /tmp/admin.properties <<PROPS
security.protocol=SASL_SSL
sasl.mechanism=SCRAM-SHA-512
ssl.truststore.type=PEM
ssl.truststore.location=/run/secrets/kafka-ca.pem
sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="admin" password="${admin_password}";
PROPS
if [ ! -f /var/lib/kafka/data/meta.properties ]; then
  /opt/kafka/bin/kafka-storage.sh format -t "${KAFKA_CLUSTER_ID:?set KAFKA_CLUSTER_ID}" \
    -c "$props" --add-scram "SCRAM-SHA-512=[name=admin,password=${admin_password}]"
fi
exec /opt/kafka/bin/kafka-server-start.sh "$props"
