#!/usr/bin/env bash
# Builds a self-contained bundle for running the GPU test suite and the link-speed benchmark on
# a host without a JDK: a jlink'd Java 25 runtime with only the modules needed, the project's
# jars and test classes, their dependencies, and the JUnit console launcher; packed as an
# xz-compressed tar (the runtime is stored uncompressed inside, which xz packs far better than
# jlink's own zip compression).
#
#   scripts/gpu-bundle.sh [output-dir]        -> output-dir/kvcache-gpu-bundle.tar.xz
#   MVN_OFFLINE=-o scripts/gpu-bundle.sh ...  (Maven offline, dependencies already local)
#
# On the GPU host:
#   tar -xJf kvcache-gpu-bundle.tar.xz -C /tmp && cd /tmp/kvcache-gpu-bundle
#   ./gpu-tests.sh                      # every test tagged gpu, except the context-poisoning one
#   ./gpu-tests.sh --poisons-context    # the sticky-error test, in a JVM of its own
#   ./link-bench.sh --out link-speed.md # the link-speed benchmark (arguments: see LinkSpeedBenchmark)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
out=${1:-$root/target}
JAVA_HOME=${JAVA_HOME:-/usr/lib/jvm/temurin-25-jdk-amd64}
export JAVA_HOME
console_version=1.14.1
work=$root/target/gpu-bundle
b=$work/kvcache-gpu-bundle
rm -rf "$work"
mkdir -p "$b/lib" "$b/test-classes" "$out"

echo "== building jars and collecting dependencies"
mvn -B -q ${MVN_OFFLINE:-} -pl kvcache-tiers,kvcache-bench -am package dependency:copy-dependencies -DskipTests \
    -DincludeScope=test -DoutputDirectory="$b/lib" \
    -DexcludeGroupIds=org.junit.jupiter,org.junit.platform,org.opentest4j,org.apiguardian,net.jqwik,org.openjdk.jmh
cp kvcache-bench/target/kvcache-bench-*.jar "$b/lib/"
for m in kvcache-native kvcache-tiers; do
  cp -r "$m/target/test-classes" "$b/test-classes/$m"
done
mvn -B -q ${MVN_OFFLINE:-} dependency:copy -Dartifact=org.junit.platform:junit-platform-console-standalone:$console_version \
    -DoutputDirectory="$b"

# the JVM flags Chronicle Map needs (one list, kept in the parent pom), for launchers that are not -jar
sed -n 's:.*<chronicle.jvm.flags>\(.*\)</chronicle.jvm.flags>.*:\1:p' "$root/pom.xml" > "$b/jvm-flags"
test -s "$b/jvm-flags"

echo "== jlink runtime"
# jdeps resolves a modular jar given as an argument as a module, which fails for the project's
# modules (two views of io.kvcache.core, automatic modules named differently); it is given
# copies of the jars without their module-info, so that it only reads what the classes use
plain=$work/jdeps-jars
mkdir -p "$plain"
python3 - "$b/lib" "$plain" <<'PY'
import os, sys, zipfile
src, dst = sys.argv[1], sys.argv[2]
for name in os.listdir(src):
    with zipfile.ZipFile(os.path.join(src, name)) as zin, \
         zipfile.ZipFile(os.path.join(dst, name), "w", zipfile.ZIP_DEFLATED) as zout:
        for item in zin.infolist():
            if not item.filename.endswith("module-info.class"):
                zout.writestr(item, zin.read(item.filename))
PY
modules=$("$JAVA_HOME/bin/jdeps" --multi-release 25 --ignore-missing-deps --print-module-deps \
    --class-path "$plain/*" "$plain"/*.jar 2>/dev/null | grep -v '^Warning' | tail -1)
test -n "$modules"
# Chronicle Map compiles code at run time and looks up names: it needs these beyond what jdeps sees
modules="$modules,jdk.compiler,java.compiler,java.naming,java.xml,jdk.zipfs"
echo "modules: $modules"
"$JAVA_HOME/bin/jlink" --add-modules "$modules" --strip-debug --no-header-files --no-man-pages \
    --output "$b/runtime"

cat > "$b/gpu-tests.sh" <<'RUN'
#!/usr/bin/env bash
# Runs the GPU tests with the bundled runtime. Extra arguments go to the JUnit console launcher.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cp="$(ls "$here"/lib/*.jar | tr '\n' ':')$here/test-classes/kvcache-native:$here/test-classes/kvcache-tiers"
tags=(--include-tag gpu --exclude-tag gpu-poisons-context)
if [[ "${1:-}" == "--poisons-context" ]]; then
  shift
  tags=(--include-tag gpu-poisons-context)
fi
exec "$here/runtime/bin/java" --enable-native-access=ALL-UNNAMED $(cat "$here/jvm-flags") -Dchronicle.analytics.disable=true \
  -jar "$here"/junit-platform-console-standalone-*.jar execute --class-path "$cp" \
  --scan-class-path "$here/test-classes/kvcache-native:$here/test-classes/kvcache-tiers" \
  "${tags[@]}" --details=tree --disable-banner "$@"
RUN
cat > "$b/link-bench.sh" <<'RUN'
#!/usr/bin/env bash
# Runs the link-speed benchmark with the bundled runtime; arguments go to LinkSpeedBenchmark.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
exec "$here/runtime/bin/java" --enable-native-access=ALL-UNNAMED $(cat "$here/jvm-flags") -Xmx8g -cp "$here/lib/*" \
  io.kvcache.bench.link.LinkSpeedBenchmark "$@"
RUN
cat > "$b/link-probe.sh" <<'RUN'
#!/usr/bin/env bash
# Runs the locality probe (exploration, unverified): LinkLocalityProbe [blockBytes] [batchMiB]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
exec "$here/runtime/bin/java" --enable-native-access=ALL-UNNAMED -cp "$here/lib/*" \
  io.kvcache.bench.link.LinkLocalityProbe "$@"
RUN
chmod +x "$b"/*.sh
tar -C "$work" -cJf "$out/kvcache-gpu-bundle.tar.xz" kvcache-gpu-bundle
du -sh "$b" "$b/runtime"
ls -l "$out/kvcache-gpu-bundle.tar.xz"
