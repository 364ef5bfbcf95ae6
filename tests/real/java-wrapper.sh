#!/usr/bin/env bash
# The `java` of the containers that tests/real/test_real_start.py starts: it stands at
# $JAVA_HOME/bin/java (/opt/java/openjdk/bin/java, first on the image's PATH) and runs the real
# JDK named in /.real-start/real-java.
#
# Every call runs for real (java -version, Flink's BashJavaUtils, which computes the JobManager's
# and the TaskManager's memory flags, config-parser-utils.sh's configuration writer), except the
# start of a Flink process: when the main class is a Flink cluster entrypoint (…ClusterEntrypoint,
# …ClusterEntryPoint) or a TaskManager runner (TaskManagerRunner, KubernetesTaskExecutorRunner),
# the JVM is started with the same options, and `-XX:+PrintFlagsFinal -version` in place of the
# class and its arguments. The JVM itself still
# reads _JAVA_OPTIONS, JAVA_TOOL_OPTIONS and JDK_JAVA_OPTIONS from the environment, as it would.
#
# Before that, the whole command line runs once with --dry-run (the JVM is created and the main
# class loaded, its main not called): a class or module that is not there fails as it would.
# Then, when that worked, what the main class's main does first runs for real with Flink's own
# classes: ParseArgs (tests/real/ParseArgs.java, compiled by test_real_start.py into
# /.real-start/parse-args) is started with the same JVM options, its directory put first on the
# command line's class path (the release's jars after it), and parses the program arguments with
# Flink's parser and loads the configuration as that main does (for a TaskManager, also its
# memory resource spec). When Flink's main would exit there (a required option missing, a conf dir
# that is not there, a conf file Flink cannot read, a TaskManager configuration without its
# fine-grained sizes), the wrapper exits with its status and prints Flink's message, as the
# JobManager or TaskManager would end: the -version run does not happen.
#
# It records, in /.real-start/record/: argv (the whole command line, one NUL-terminated word
# each), env (those three variables), dry-run and dry-run-exit (that run's output and status),
# parse, parse-exit and parse-result (ParseArgs' output, status and one-line verdict; not there
# when it did not run), flags (the JVM's PrintFlagsFinal output and its stderr) and exit (that
# JVM's status).
REC=/.real-start
REAL_JAVA=$(cat "$REC/real-java")

args=("$@")
n=${#args[@]}
main=-1      # where the class is
opts_end=0   # how many words are JVM options
module=""    # the class is named as module/class
i=0
while [ $i -lt $n ]; do
    a=${args[$i]}
    case "$a" in
        -cp|-classpath|--class-path|-p|--module-path|--upgrade-module-path|--add-modules|\
        --limit-modules|--add-reads|--add-exports|--add-opens|--patch-module|--enable-native-access)
            i=$((i + 2)) ;;
        -m|--module)
            opts_end=$i; main=$((i + 1)); module=yes; break ;;
        --module=*)
            opts_end=$i; main=$i; module=yes; break ;;
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

# ParseArgs: the entrypoint's own argument parsing and configuration loading, as its main.
parse_classpath() { # the JVM options with ParseArgs' directory first on each class path given
    local j=0 a
    popts=()
    local seen=""
    while [ $j -lt $opts_end ]; do
        a=${args[$j]}
        case "$a" in
            -cp|-classpath|--class-path)
                popts+=("$a" "$REC/parse-args:${args[$((j + 1))]}"); seen=yes; j=$((j + 2)); continue ;;
            --class-path=*)
                popts+=("--class-path=$REC/parse-args:${a#--class-path=}"); seen=yes ;;
            -p|--module-path|--upgrade-module-path|--add-modules|--limit-modules|--add-reads|\
            --add-exports|--add-opens|--patch-module|--enable-native-access)
                popts+=("$a" "${args[$((j + 1))]}"); j=$((j + 2)); continue ;;
            *)
                popts+=("$a") ;;
        esac
        j=$((j + 1))
    done
    # No class path option: the JVM's is $CLASSPATH, else the working directory.
    [ -n "$seen" ] || popts+=(-cp "$REC/parse-args:${CLASSPATH:-.}")
}
if [ $dry -eq 0 ] && [ -z "$module" ] && [ -f "$REC/parse-args/ParseArgs.class" ]; then
    parse_classpath
    "$REAL_JAVA" "${popts[@]}" ParseArgs "$REC/record/parse-result" "$class" "${args[@]:$((main + 1))}" \
        > "$REC/record/parse" 2>&1
    parse=$?
    echo "$parse" > "$REC/record/parse-exit"
    if [ $parse -ne 0 ]; then
        echo "java-wrapper: $class's main ends before the JobManager or TaskManager starts ($parse):" >&2
        tail -n 40 "$REC/record/parse" >&2
        exit $parse
    fi
elif [ $dry -eq 0 ] && [ -n "$module" ]; then
    echo "not run: the class is named as module/class (ParseArgs runs on the class path)" \
        > "$REC/record/parse-result"
fi
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
