#!/usr/bin/env bash
# The `java` of the containers that tests/real/test_real_start.py starts: it stands at
# $JAVA_HOME/bin/java (/opt/java/openjdk/bin/java, first on the image's PATH) and runs the real
# JDK named in /.real-start/real-java.
#
# Every call runs for real (java -version, Flink's BashJavaUtils, which computes the JobManager's
# memory flags, config-parser-utils.sh's configuration writer), except the start of a Flink
# process: when the main class is a Flink cluster entrypoint (…ClusterEntrypoint,
# …ClusterEntryPoint) or a TaskManager runner, the JVM is started with the same options, and
# `-XX:+PrintFlagsFinal -version` in place of the class and its arguments. The JVM itself still
# reads _JAVA_OPTIONS, JAVA_TOOL_OPTIONS and JDK_JAVA_OPTIONS from the environment, as it would.
#
# Before that, the whole command line runs once with --dry-run (the JVM is created and the main
# class loaded, its main not called): a class or module that is not there fails as it would.
#
# It records, in /.real-start/record/: argv (the whole command line, one NUL-terminated word
# each), env (those three variables), dry-run and dry-run-exit (that run's output and status),
# flags (the JVM's PrintFlagsFinal output and its stderr) and exit (that JVM's status).
REC=/.real-start
REAL_JAVA=$(cat "$REC/real-java")

args=("$@")
n=${#args[@]}
main=-1      # where the class is
opts_end=0   # how many words are JVM options
i=0
while [ $i -lt $n ]; do
    a=${args[$i]}
    case "$a" in
        -cp|-classpath|--class-path|-p|--module-path|--upgrade-module-path|--add-modules|\
        --limit-modules|--add-reads|--add-exports|--add-opens|--patch-module|--enable-native-access)
            i=$((i + 2)) ;;
        -m|--module)
            opts_end=$i; main=$((i + 1)); break ;;
        --module=*)
            opts_end=$i; main=$i; break ;;
        -jar)
            break ;;  # the class is in the jar's manifest: not a Flink entrypoint start here
        -*|@*)
            i=$((i + 1)) ;;
        *)
            opts_end=$i; main=$i; break ;;
    esac
done

class=""
if [ $main -ge 0 ] && [ $main -lt $n ]; then
    class=${args[$main]}
    class=${class#--module=}
    class=${class##*/}          # module/class
fi

case "$class" in
    org.apache.flink.*ClusterEntrypoint|org.apache.flink.*ClusterEntryPoint|\
    org.apache.flink.*TaskManagerRunner|org.apache.flink.*TaskExecutorRunner)
        ;;
    *)
        exec "$REAL_JAVA" "$@"
        ;;
esac

mkdir -p "$REC/record"
printf '%s\0' "$REAL_JAVA" "$@" > "$REC/record/argv"
{
    printf '_JAVA_OPTIONS=%s\0' "${_JAVA_OPTIONS-}"
    printf 'JAVA_TOOL_OPTIONS=%s\0' "${JAVA_TOOL_OPTIONS-}"
    printf 'JDK_JAVA_OPTIONS=%s\0' "${JDK_JAVA_OPTIONS-}"
} > "$REC/record/env"
"$REAL_JAVA" --dry-run "$@" > "$REC/record/dry-run" 2>&1
dry=$?
echo "$dry" > "$REC/record/dry-run-exit"
echo "java-wrapper: $class started as: java <its ${opts_end} JVM options> -XX:+PrintFlagsFinal -version" >&2
"$REAL_JAVA" "${args[@]:0:$opts_end}" -XX:+PrintFlagsFinal -version > "$REC/record/flags" 2>&1
rc=$?
echo "$rc" > "$REC/record/exit"
grep -E ' (MaxHeapSize|InitialHeapSize|MaxMetaspaceSize|MaxDirectMemorySize) ' "$REC/record/flags" >&2
if [ $dry -ne 0 ]; then
    echo "java-wrapper: java --dry-run of the command line failed ($dry):" >&2
    tail -n 5 "$REC/record/dry-run" >&2
    exit $dry
fi
exit $rc
