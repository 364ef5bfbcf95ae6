#!/usr/bin/env bash
# Generates the oracle data: for every Flink line, ORACLE_CASES seeded random configurations and
# the curated cases in probes.jsonl, each resolved by that line's own jars, as JSON Lines in
# OUT_DIR/<line>.jsonl and OUT_DIR/<line>-curated.jsonl; the same for TaskManagers in
# OUT_DIR/<line>-tm.jsonl and <line>-tm-curated.jsonl (tm-probes.jsonl), and pkg/tmmem's
# unit-test data (tests/data/tmmem-*.json) in <line>-tm-data.jsonl.
#
#   tests/oracle/oracle-data.sh OUT_DIR
#   tests/oracle/oracle-data.sh OUT_DIR --vectors FILE    only replay the shared vectors per line
#   env: ORACLE_SEED (a number, or "random" for a fresh seed, printed; default random), ORACLE_CASES (default 10000),
#        ORACLE_TM_CASES (the TaskManager's random cases per line; default ORACLE_CASES),
#        ORACLE_LINES ("default": the lines and roles marked below; "all"; or a list such as "1.20 2.3"),
#        ORACLE_ROLES (default "jobmanager taskmanager"; "jobmanager" or "taskmanager" leaves the other out),
#        ORACLE_JOBS (default 2),
#        MVN (default mvn), JAVA (default java), JAVAC (default javac).
#
# Flink's jars come from Maven Central through Maven, into the default local repository
# (~/.m2), so that a second run downloads nothing. A line's class path is cached in
# OUT_DIR/cp/<line>.txt and Maven is not started again while every jar on it still exists.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
data=$(cd "$here/../data" && pwd)
out=${1:?usage: oracle-data.sh OUT_DIR [--vectors FILE]}
vectors=
if [ "${2:-}" = --vectors ]; then
  vectors=$(cd "$(dirname "${3:?--vectors needs a file}")" && pwd)/$(basename "$3")
fi
mkdir -p "$out/cp" "$out/classes" "$out/log"
out=$(cd "$out" && pwd)

# line, newest served version, flink-runtime artifact (up to 1.13 with a Scala suffix), and what
# runs by default: "default" both roles, "tm" the TaskManager only. 1.11.6 ... 1.18.1 are final
# releases whose JobManager memory code is the same: on 3 x 10,000 cases they gave byte-identical
# results (dynamic configs aside, which 1.11 lacks), so by default a subset of them runs for the
# JobManager: 1.11 (one output line), 1.12 (first with dynamic configs), 1.15 (commons-cli 1.5),
# 1.18 (last before standard YAML). The TaskManager's code changes in the others (1.13: slots and
# external resources; 1.14: CPU cores cut to 8 decimal places; 1.17: network memory without a
# maximum), so it runs on every line, and each change is pinned between two neighbours.
all_lines='
1.11 1.11.6 flink-runtime_2.12 default
1.12 1.12.7 flink-runtime_2.12 default
1.13 1.13.6 flink-runtime_2.12 tm
1.14 1.14.6 flink-runtime tm
1.15 1.15.4 flink-runtime default
1.16 1.16.3 flink-runtime tm
1.17 1.17.2 flink-runtime tm
1.18 1.18.1 flink-runtime default
1.19 1.19.3 flink-runtime default
1.20 1.20.5 flink-runtime default
2.0 2.0.2 flink-runtime default
2.1 2.1.3 flink-runtime default
2.2 2.2.1 flink-runtime default
2.3 2.3.0 flink-runtime default
'
MVN=${MVN:-mvn}
JAVA=${JAVA:-java}
JAVAC=${JAVAC:-javac}
seed=${ORACLE_SEED:-random}
[ "$seed" = random ] && seed=$(od -An -N4 -tu4 /dev/urandom | tr -d ' ')
cases=${ORACLE_CASES:-10000}
tm_cases=${ORACLE_TM_CASES:-$cases}
jobs=${ORACLE_JOBS:-2}
roles=${ORACLE_ROLES:-jobmanager taskmanager}
jm=0 tm=0
case " $roles " in *" jobmanager "*) jm=1 ;; esac
case " $roles " in *" taskmanager "*) tm=1 ;; esac
[ $jm = 1 ] || [ $tm = 1 ] || { echo "oracle: ORACLE_ROLES names neither jobmanager nor taskmanager" >&2; exit 1; }
lines_mode=${ORACLE_LINES:-default}
case $lines_mode in
  default) wanted=$(awk -v tm=$tm -v jm=$jm '($4 == "default" && (jm || tm)) || ($4 == "tm" && tm) {print $1}' <<<"$all_lines") ;;
  all) wanted=$(awk 'NF {print $1}' <<<"$all_lines") ;;
  *) wanted=$ORACLE_LINES ;;
esac

for tool in "$MVN" "$JAVA" "$JAVAC"; do
  command -v "$tool" >/dev/null || { echo "oracle: '$tool' not found (make deps installs maven and a JDK)" >&2; exit 1; }
done

[ -n "$vectors" ] || echo "oracle: seed $seed, $cases cases per line (JobManager), $tm_cases (TaskManager), roles: $roles (reproduce with ORACLE_SEED=$seed ORACLE_CASES=$cases ORACLE_TM_CASES=$tm_cases)"
start=$(date +%s)

# The harness uses Flink only through reflection: compiled once, run against every line.
srcs=("$here"/src/main/java/oracle/*.java)
if [ ! -f "$out/classes/.stamp" ] || [ -n "$(find "${srcs[@]}" -newer "$out/classes/.stamp")" ]; then
  rm -rf "$out/classes" && mkdir -p "$out/classes"
  "$JAVAC" --release 11 -Xlint:all -Werror -d "$out/classes" "${srcs[@]}"
  touch "$out/classes/.stamp"
fi

# classpath LINE VERSION ARTIFACT: resolves (or reuses) the line's jars; prints nothing.
classpath() {
  local line=$1 version=$2 artifact=$3 cp="$out/cp/$1.txt" ok=1 jar
  if [ -s "$cp" ] && [ "$cp" -nt "$here/pom.xml" ]; then
    for jar in $(tr ':' ' ' <"$cp"); do [ -f "$jar" ] || ok=0; done
    [ $ok = 1 ] && return 0
  fi
  echo "oracle: Flink $version: resolving its jars with Maven (the first time downloads them)"
  # From 1.15 (kubernetes.jobmanager.memory.limit-factor) flink-kubernetes joins the path, where
  # the repository serves it for that release (not every release has one); without it the
  # line's limit factor is simply not checked, and this says so.
  local k8s=()
  case $line in 1.1[1-4]) ;; *) k8s=(-Dflink.kubernetes) ;; esac
  resolve() {
    "$MVN" -B -q -Dstyle.color=never -f "$here/pom.xml" -Dflink.version="$version" \
      -Dflink.runtime.artifactId="$artifact" "$@" dependency:build-classpath \
      -Dmdep.outputFile="$cp.tmp" >"$out/log/mvn-$line.log" 2>&1
  }
  if ! resolve "${k8s[@]}"; then
    if [ ${#k8s[@]} -gt 0 ] && grep -q "flink-kubernetes:jar:$version" "$out/log/mvn-$line.log" && resolve; then
      echo "oracle: Flink $version: flink-kubernetes $version is not served; its limit factor is not checked"
    else
      echo "oracle: Maven could not resolve Flink $version; see $out/log/mvn-$line.log" >&2
      tail -n 20 "$out/log/mvn-$line.log" >&2
      return 1
    fi
  fi
  mv "$cp.tmp" "$cp"
}

# vectors_line LINE: replays the shared vectors through LINE's jars; prints the differences.
vectors_line() {
  local line=$1 version artifact
  read -r _ version artifact _ < <(awk -v l="$line" '$1 == l' <<<"$all_lines")
  classpath "$line" "$version" "$artifact" || return 1
  "$JAVA" --add-opens java.base/java.util=ALL-UNNAMED -cp "$out/classes:$(cat "$out/cp/$line.txt")" \
    oracle.Oracle vectors --flink "$version" --vectors "$vectors" 2>&1 | grep -v '^SLF4J'
  return "${PIPESTATUS[0]}"
}

# position LINE: "n of m" among the lines of this run.
position() {
  awk -v l="$1" '{for (i = 1; i <= NF; i++) if ($i == l) n = i} END {printf "%d of %d", n, NF}' \
    <<<"$(tr '\n' ' ' <<<"$wanted")"
}

# line_roles LINE: "jm tm", "tm" or "jm": what runs on LINE (the table's mark, by default).
line_roles() {
  local mark r=
  mark=$(awk -v l="$1" '$1 == l {print $4}' <<<"$all_lines")
  [ $jm = 1 ] && { [ "$lines_mode" != default ] || [ "$mark" = default ]; } && r=jm
  [ $tm = 1 ] && r="${r:+$r }tm"
  echo "$r"
}

# run_line LINE: generates LINE's random and curated cases of each of its roles and checks the
# environment edit.
run_line() {
  local line=$1 version artifact java_cmd t0 f args=() files=() r
  read -r _ version artifact _ < <(awk -v l="$line" '$1 == l' <<<"$all_lines")
  r=$(line_roles "$line")
  t0=$(date +%s)
  classpath "$line" "$version" "$artifact" || return 1
  java_cmd=("$JAVA" --add-opens java.base/java.util=ALL-UNNAMED -cp "$out/classes:$(cat "$out/cp/$line.txt")" oracle.Oracle)
  if [[ " $r " == *" jm "* ]]; then
    args+=(--out "$out/$line.jsonl.tmp" --curated "$here/probes.jsonl" --curated-out "$out/$line-curated.jsonl.tmp"
      --k8s-out "$out/$line-k8s.jsonl.tmp")
    files+=("$line" "$line-curated")
  fi
  if [[ " $r " == *" tm "* ]]; then
    args+=(--tm-out "$out/$line-tm.jsonl.tmp" --tm-cases "$tm_cases" --tm-curated "$here/tm-probes.jsonl"
      --tm-curated-out "$out/$line-tm-curated.jsonl.tmp"
      --tm-data "$data/tmmem-flink-cases.json,$data/tmmem-edges.json" --tm-data-out "$out/$line-tm-data.jsonl.tmp")
    files+=("$line-tm" "$line-tm-curated" "$line-tm-data")
  fi
  # One JVM: for each role, the environment-edit check, the random cases, the curated cases.
  "${java_cmd[@]}" line --line "$line" --flink "$version" --seed "$seed" --cases "$cases" "${args[@]}" \
    >"$out/log/java-$line.log" 2>&1 || {
    echo "oracle: Flink $version failed; see $out/log/java-$line.log" >&2
    grep -v '^SLF4J' "$out/log/java-$line.log" | tail -n 20 >&2
    return 1
  }
  for f in "${files[@]}"; do mv "$out/$f.jsonl.tmp" "$out/$f.jsonl"; done
  if [ -f "$out/$line-k8s.jsonl.tmp" ]; then mv "$out/$line-k8s.jsonl.tmp" "$out/$line-k8s.jsonl"; fi
  echo "$(grep '^oracle ' "$out/log/java-$line.log") [line $(position "$line") done in $(($(date +%s) - t0))s, $(($(date +%s) - start))s since start]"
}

if [ -n "$vectors" ]; then
  status=0
  for line in $wanted; do vectors_line "$line" || status=1; done
  exit $status
fi

# Stale files of an earlier run (another seed, other lines) must not be replayed.
rm -f "$out"/*.jsonl "$out"/*.jsonl.tmp
for line in $wanted; do
  awk -v l="$line" '$1 == l {f = 1} END {exit !f}' <<<"$all_lines" || { echo "oracle: unknown line $line" >&2; exit 1; }
done

export -f classpath position line_roles run_line
export out here data all_lines MVN JAVA seed cases tm_cases wanted start jm tm lines_mode
# Maven's first run fetches its plugin; do one line alone so parallel runs do not race on it.
first=$(awk '{print $1; exit}' <<<"$wanted")
status=0
run_line "$first" || status=1
rest=$(awk '{for (i = 2; i <= NF; i++) print $i}' <<<"$(tr '\n' ' ' <<<"$wanted")")
if [ -n "$rest" ]; then
  xargs -P "$jobs" -I{} bash -c 'run_line "$@"' _ {} <<<"$rest" || status=1
fi
echo "oracle: data in $out ($(ls "$out"/*.jsonl 2>/dev/null | wc -l) files, $(($(date +%s) - start))s)"
exit $status
