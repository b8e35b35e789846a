#!/bin/sh
# Builds the bench module and runs the disk tier benchmark (io.kvcache.bench.disk.DiskTierBenchmark);
# arguments go to it: [--dir DIR] [--total-mib 1024] [--repeats 5] [--blocks-kib 64,2048].
exec "$(dirname "$0")/bench-main.sh" io.kvcache.bench.disk.DiskTierBenchmark "$@"
