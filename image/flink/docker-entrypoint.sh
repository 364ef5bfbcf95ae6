#!/usr/bin/env bash
# The official Flink image's ENTRYPOINT (/docker-entrypoint.sh), as this project models it: the
# entrypoint of the node's Flink images (image/flink/build.sh, README.md there) and of the
# containers tests/real/test_real_start.py starts without an engine. Written from flink-docker's
# documented behaviour (its docker-entrypoint.sh of each release line), not copied from it.
#
# What it models, by the Flink line found in /opt/flink/lib/flink-dist*.jar:
#   - the JobManager address: JOB_MANAGER_RPC_ADDRESS, else `hostname -f`;
#   - the edits of the conf file before Flink starts:
#       1.11, 1.12  only for jobmanager, standalone-job and taskmanager: jobmanager.rpc.address,
#                   blob.server.port 6124, query.server.port 6125 replaced in or appended to
#                   conf/flink-conf.yaml; FLINK_PROPERTIES appended as it is; then envsubst over
#                   the whole file, written to flink-conf.yaml.tmp and moved over the file;
#       1.13-1.18   the same edits, and TASK_MANAGER_NUMBER_OF_TASK_SLOTS when set, made for every
#                   command, before the command is looked at;
#       1.19, 2.x   the same options given as -Dkey=value to bin/config-parser-utils.sh (Flink's
#                   BashJavaUtils reads the conf dir, applies them and the script writes the whole
#                   configuration back to flink-conf.yaml if it exists, else config.yaml);
#                   FLINK_PROPERTIES one line at a time: all white space deleted, split at the
#                   first ':', the value run through envsubst, and given the same way;
#     On a read-only conf dir (a ConfigMap mount) these edits fail as they do in the image: the
#     errors are printed and the start goes on with the file as mounted.
#   - the dispatch: jobmanager -> bin/jobmanager.sh start-foreground ARGS; standalone-job ->
#     bin/standalone-job.sh start-foreground ARGS; taskmanager -> bin/taskmanager.sh
#     start-foreground ARGS; help prints the usage; 1.12's native-k8s mode (config.sh sourced,
#     FLINK_CLASSPATH exported, then `bash -c` of the remaining arguments, the generated java
#     command); anything else runs as given (pass-through), and in 1.12 with config.sh sourced
#     and FLINK_CLASSPATH exported first.
#
#   - dropping to the flink user for what it starts, when it runs as root (the image's gosu; here
#     util-linux's setpriv, with the flink user's uid, gid and groups); the conf edits run before,
#     as root, as in the image. Where no flink user exists (tests/real's sandbox runs the host's
#     /etc as root) everything runs as the caller.
#
# What it leaves out: LD_PRELOAD of jemalloc (not installed here; it changes
# no JVM flag); ENABLE_BUILT_IN_PLUGINS; history-server and sql-gateway; 1.12's disable-jemalloc
# argument is only dropped; the image build's own edits of the default conf file (bind addresses:
# no memory option).

FLINK_HOME="${FLINK_HOME:-/opt/flink}"

flink_line() {
    local jar name
    jar=$(ls "$FLINK_HOME"/lib/flink-dist*.jar 2>/dev/null | head -n1)
    name=$(basename "$jar" .jar)
    # flink-dist-1.18.1, flink-dist_2.11-1.11.4
    name=${name##*-}
    echo "${name%.*}"
}

LINE=$(flink_line)
MAJOR=${LINE%%.*}
MINOR=${LINE#*.}
line_ge() { # line_ge MAJOR MINOR: the image's line is at least MAJOR.MINOR
    [ "$MAJOR" -gt "$1" ] || { [ "$MAJOR" -eq "$1" ] && [ "$MINOR" -ge "$2" ]; }
}

JOB_MANAGER_RPC_ADDRESS=${JOB_MANAGER_RPC_ADDRESS:-$(hostname -f)}
CONF_DIR="$FLINK_HOME/conf"
LEGACY_CONF="$CONF_DIR/flink-conf.yaml"

# --- up to 1.18: the file is edited with grep, sed and echo ---

legacy_set() { # legacy_set KEY VALUE: replace the key's line(s), or append one
    local key="$1" value="$2" pattern
    pattern=$(printf '%s' "$key" | sed -e 's/\./\\./g')
    if grep -E "^${pattern}:.*" "$LEGACY_CONF" >/dev/null; then
        sed -i -e "s/${pattern}:.*/${key}: ${value}/g" "$LEGACY_CONF"
    else
        echo "${key}: ${value}" >> "$LEGACY_CONF"
    fi
}

legacy_prepare() {
    legacy_set jobmanager.rpc.address "$JOB_MANAGER_RPC_ADDRESS"
    legacy_set blob.server.port 6124
    legacy_set query.server.port 6125
    if line_ge 1 13 && [ -n "$TASK_MANAGER_NUMBER_OF_TASK_SLOTS" ]; then
        legacy_set taskmanager.numberOfTaskSlots "$TASK_MANAGER_NUMBER_OF_TASK_SLOTS"
    fi
    if [ -n "$FLINK_PROPERTIES" ]; then
        echo "$FLINK_PROPERTIES" >> "$LEGACY_CONF"
    fi
    envsubst < "$LEGACY_CONF" > "$LEGACY_CONF.tmp" && mv "$LEGACY_CONF.tmp" "$LEGACY_CONF"
}

# --- 1.19 on: the options go through Flink's own config-parser-utils.sh ---

parser_set() { # parser_set KEY VALUE [KEY VALUE...]
    local params=()
    while [ $# -ge 2 ]; do
        params+=("-D$1=$2")
        shift 2
    done
    [ ${#params[@]} -eq 0 ] ||
        "$FLINK_HOME/bin/config-parser-utils.sh" "$CONF_DIR" "$FLINK_HOME/bin" "$FLINK_HOME/lib" "${params[@]}"
}

parser_properties() {
    local options=() line key value saved_ifs="$IFS"
    IFS=$'\n'
    for line in $FLINK_PROPERTIES; do
        line=$(echo $line | tr -d '[:space:]')
        [ -n "$line" ] || continue
        key=${line%%:*}
        value=${line#*:}
        [ "$key" != "$line" ] || value=""
        value=$(echo $value | envsubst)
        options+=("$key" "$value")
    done
    IFS="$saved_ifs"
    parser_set "${options[@]}"
}

parser_prepare() {
    local options=(jobmanager.rpc.address "$JOB_MANAGER_RPC_ADDRESS" blob.server.port 6124
                   query.server.port 6125)
    if [ -n "$TASK_MANAGER_NUMBER_OF_TASK_SLOTS" ]; then
        options+=(taskmanager.numberOfTaskSlots "$TASK_MANAGER_NUMBER_OF_TASK_SLOTS")
    fi
    parser_set "${options[@]}"
    if [ -n "$FLINK_PROPERTIES" ]; then
        parser_properties
    fi
}

prepare() {
    if line_ge 1 19; then parser_prepare; else legacy_prepare; fi
}

flink_classpath_for_pass_through() { # 1.12: config.sh's classpath, exported for the command
    export _FLINK_HOME_DETERMINED=true
    . "$FLINK_HOME/bin/config.sh"
    export FLINK_CLASSPATH="$(constructFlinkClassPath):$INTERNAL_HADOOP_CLASSPATHS"
}

drop_privs_cmd() { # the command prefix that runs the rest as flink, or nothing
    if [ "$(id -u)" = 0 ] && grep -q '^flink:' /etc/passwd 2>/dev/null; then
        echo "setpriv --reuid=flink --regid=flink --init-groups"
    fi
}

# Before 1.13 only the start commands edit the conf; from 1.13 on every command does, first.
if line_ge 1 13; then
    prepare
fi

command="$1"
[ $# -gt 0 ] && shift
if [ "$LINE" = "1.12" ] && [ "${1:-}" = "disable-jemalloc" ]; then
    shift
fi

case "$command" in
    help)
        echo "Usage: $(basename "$0") (jobmanager|standalone-job|taskmanager|history-server)"
        exit 0
        ;;
    jobmanager|standalone-job)
        line_ge 1 13 || prepare
        echo "Starting Job Manager"
        if [ "$command" = jobmanager ]; then
            exec $(drop_privs_cmd) "$FLINK_HOME/bin/jobmanager.sh" start-foreground "$@"
        fi
        exec $(drop_privs_cmd) "$FLINK_HOME/bin/standalone-job.sh" start-foreground "$@"
        ;;
    taskmanager)
        line_ge 1 13 || prepare
        echo "Starting Task Manager"
        exec $(drop_privs_cmd) "$FLINK_HOME/bin/taskmanager.sh" start-foreground "$@"
        ;;
    native-k8s)
        if [ "$LINE" = "1.12" ]; then
            flink_classpath_for_pass_through
            echo "Start command: $*"
            exec $(drop_privs_cmd) bash -c "$@"
        fi
        ;;
esac

# Pass-through: the command as given.
if [ "$LINE" = "1.12" ]; then
    flink_classpath_for_pass_through
fi
exec $(drop_privs_cmd) "$command" "$@"
