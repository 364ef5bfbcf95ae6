# Not run on this host: its text is the command of a `kubectl exec ... -- sh -c` into a Flink
# container (tests/node/test_node.py, scripts/run.sh). It prints the flags of the JVM that is the
# container's PID 1 (jcmd 1 VM.flags). jcmd attaches only as the JVM's own user, which need not be
# the user kubectl exec runs as (the entrypoint drops root to flink; a pod may set runAsUser), so
# it runs as PID 1's owner: directly when that is already us, else through setpriv.
o=$(stat -c "%u %g" /proc/1)
jcmd=/opt/java/openjdk/bin/jcmd
[ "$(id -u)" = "${o% *}" ] && exec "$jcmd" 1 VM.flags
exec setpriv --reuid="${o% *}" --regid="${o#* }" --clear-groups "$jcmd" 1 VM.flags
