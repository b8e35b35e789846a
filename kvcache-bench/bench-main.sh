#!/bin/sh
# Builds the bench module and runs one of its programs: bench-main.sh CLASS [arguments...].
# The JVM flags are the parent pom's chronicle.jvm.flags (kept equal to ChronicleJvmFlags by a
# test): the disk tier's index needs them.
set -e
MAIN="$1"
shift
cd "$(dirname "$0")/.."
mvn -B -q -pl kvcache-bench -am package dependency:build-classpath -DskipTests \
    -Dmdep.outputFile="$PWD/kvcache-bench/target/classpath.txt" -Dmdep.includeScope=runtime
FLAGS=$(sed -n 's:.*<chronicle.jvm.flags>\(.*\)</chronicle.jvm.flags>.*:\1:p' pom.xml)
JAVA="${JAVA_HOME:+$JAVA_HOME/bin/}java"
# shellcheck disable=SC2086 # FLAGS is a list of separate flags
exec "$JAVA" $FLAGS -cp "kvcache-bench/target/classes:$(cat kvcache-bench/target/classpath.txt)" "$MAIN" "$@"
