#!/bin/sh
# Builds the bench module and runs the multi-turn serving benchmark
# (io.kvcache.bench.serving.ServingBenchmark); arguments go to it (--help lists them).
exec "$(dirname "$0")/bench-main.sh" io.kvcache.bench.serving.ServingBenchmark "$@"
