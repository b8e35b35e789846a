#!/usr/bin/env bash
# Builds a self-contained bundle of the LongContextDemo for a GPU host without a JDK: a jlink'd
# Java 25 runtime, the demo jar, the examples' test classes and the JUnit console launcher (for the
# tests tagged gpu), packed as an xz-compressed tar.
#
#   examples/gpu-bundle.sh [output-dir] [model.bin ...]   -> output-dir/long-context-demo-gpu.tar.xz
#
# Model files given after the output directory are copied into the bundle's models/ (they are
# test inputs, never part of the repository). On the GPU host:
#   tar -xJf long-context-demo-gpu.tar.xz -C /tmp && cd /tmp/long-context-demo-gpu
#   ./demo.sh --device cuda                          # the demo, with any of its options
#   ./gpu-tests.sh                                   # the examples' tests tagged gpu
#   ./build-ptx.sh                                   # rebuild the engine's PTX with the host's nvcc into ptx/
#   ./engine-bench.sh --shape llama3-8b ...          # the GPU engine benchmark (kvcache-bench)
#   ./serving-bench.sh --platform gpu ...            # the multi-turn serving benchmark (kvcache-bench)
# The launchers put ptx/ ahead of the jar on the class path, so a PTX built on the host is the
# one loaded without a round trip through the repository.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
out=${1:-$root/examples/target}
shift || true
JAVA_HOME=${JAVA_HOME:-/usr/lib/jvm/temurin-25-jdk-amd64}
export JAVA_HOME
console_version=1.14.1
work=$root/examples/target/gpu-bundle
b=$work/long-context-demo-gpu
rm -rf "$work"
mkdir -p "$b/models" "$out"

echo "== building the demo jar"
# the demo jar carries the project and its dependencies; the console launcher carries JUnit
mvn -B -q -pl kvcache-bench -am package -DskipTests
cp examples/target/long-context-demo.jar "$b/"
cp kvcache-bench/target/kvcache-bench-*[0-9T].jar "$b/kvcache-bench.jar"
mkdir -p "$b/cuda" "$b/ptx/io/kvcache/examples/gpu"
cp examples/src/main/cuda/llama_engine.cu "$b/cuda/"
cp -r examples/target/test-classes "$b/test-classes"
cp -r kvcache-bench/target/test-classes "$b/bench-test-classes"
mvn -B -q dependency:copy -Dartifact=org.junit.platform:junit-platform-console-standalone:$console_version \
    -DoutputDirectory="$b"
for m in "$@"; do
  cp "$m" "$b/models/"
done

# the JVM flags Chronicle Map needs (one list, kept in the parent pom), for launchers that are not -jar
sed -n 's:.*<chronicle.jvm.flags>\(.*\)</chronicle.jvm.flags>.*:\1:p' "$root/pom.xml" > "$b/jvm-flags"
test -s "$b/jvm-flags"

echo "== jlink runtime"
modules=$("$JAVA_HOME/bin/jdeps" --multi-release 25 --ignore-missing-deps --print-module-deps \
    "$b/long-context-demo.jar" 2>/dev/null | grep -v '^Warning' | tail -1)
# Chronicle Map (the disk tier's index) compiles code at run time and looks up names
modules="$modules,jdk.compiler,java.compiler,java.naming,java.xml,jdk.zipfs,java.desktop"
echo "modules: $modules"
"$JAVA_HOME/bin/jlink" --add-modules "$modules" --strip-debug --no-header-files --no-man-pages \
    --output "$b/runtime"

cat > "$b/demo.sh" <<'RUN'
#!/usr/bin/env bash
# Runs the demo with the bundled runtime; arguments go to the demo.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
exec "$here/runtime/bin/java" --sun-misc-unsafe-memory-access=allow --enable-native-access=ALL-UNNAMED \
  $(cat "$here/jvm-flags") -cp "$here/ptx:$here/long-context-demo.jar" io.kvcache.examples.demo.LongContextDemo "$@"
RUN
cat > "$b/gpu-tests.sh" <<'RUN'
#!/usr/bin/env bash
# Runs the examples' and the bench's tests tagged gpu with the bundled runtime (models/ holds the
# test models); extra arguments go to the JUnit console launcher (e.g. --include-classname '.*Serving.*').
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# Everything on the JVM's own class path (not the launcher's --class-path): the disk tier's Chronicle
# Map compiles code at run time against java.class.path.
cp="$here/ptx:$here/long-context-demo.jar:$here/kvcache-bench.jar:$here/test-classes:$here/bench-test-classes"
cp="$cp:$(ls "$here"/junit-platform-console-standalone-*.jar)"
exec "$here/runtime/bin/java" --enable-native-access=ALL-UNNAMED $(cat "$here/jvm-flags") -Dkvcache.test.models="$here/models" \
  -cp "$cp" org.junit.platform.console.ConsoleLauncher execute \
  --scan-class-path "$here/test-classes:$here/bench-test-classes" --include-tag gpu --details=tree --disable-banner "$@"
RUN
cat > "$b/build-ptx.sh" <<'RUN'
#!/usr/bin/env bash
# Builds the engine's kernels with the host's nvcc into ptx/ (ahead of the jar's copy on the class
# path) and reports registers and spills of each kernel for sm_90.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
nvcc=${NVCC:-nvcc}
"$nvcc" -ptx -O3 -arch=compute_90 -o "$here/ptx/io/kvcache/examples/gpu/llama_engine.compute_90.ptx" \
    "$here/cuda/llama_engine.cu"
"$nvcc" -cubin -O3 -arch=sm_90 -Xptxas -v -o /tmp/llama_engine.cubin "$here/cuda/llama_engine.cu" 2>&1 \
    | grep -E 'Compiling entry|registers|spill' || true
"$nvcc" --version | tail -1
RUN
cat > "$b/engine-bench.sh" <<'RUN'
#!/usr/bin/env bash
# Runs io.kvcache.bench.engine.GpuEngineBenchmark with the bundled runtime; arguments go to it.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
exec "$here/runtime/bin/java" --enable-native-access=ALL-UNNAMED $(cat "$here/jvm-flags") -Xmx8g \
  -cp "$here/ptx:$here/long-context-demo.jar:$here/kvcache-bench.jar" io.kvcache.bench.engine.GpuEngineBenchmark "$@"
RUN
cat > "$b/serving-bench.sh" <<'RUN'
#!/usr/bin/env bash
# Runs io.kvcache.bench.serving.ServingBenchmark with the bundled runtime; arguments go to it.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
exec "$here/runtime/bin/java" --sun-misc-unsafe-memory-access=allow --enable-native-access=ALL-UNNAMED \
  $(cat "$here/jvm-flags") -Xmx8g \
  -cp "$here/ptx:$here/long-context-demo.jar:$here/kvcache-bench.jar" io.kvcache.bench.serving.ServingBenchmark "$@"
RUN
chmod +x "$b"/*.sh
tar -C "$work" -cJf "$out/long-context-demo-gpu.tar.xz" long-context-demo-gpu
du -sh "$b" "$b/runtime"
ls -l "$out/long-context-demo-gpu.tar.xz"
