#!/bin/sh
# Builds the bench module and runs the Redis tier benchmark (io.kvcache.bench.redis.RedisTierBenchmark);
# arguments go to it: [--uri redis://[user:password@]host:port] [--total-mib 256] [--repeats 5]
# [--blocks-kib 64,2048] [--window 32] [--chain 32] [--latency-ops 200]. Without --uri it starts
# its own redis-server on 127.0.0.1.
set -e
cd "$(dirname "$0")/.."
mvn -B -q -pl kvcache-bench -am package dependency:build-classpath -DskipTests \
    -Dmdep.outputFile="$PWD/kvcache-bench/target/classpath.txt" -Dmdep.includeScope=runtime
JAVA="${JAVA_HOME:+$JAVA_HOME/bin/}java"
exec "$JAVA" --enable-native-access=ALL-UNNAMED -cp "kvcache-bench/target/classes:$(cat kvcache-bench/target/classpath.txt)" \
    io.kvcache.bench.redis.RedisTierBenchmark "$@"
