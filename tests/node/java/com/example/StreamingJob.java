// The job of the node's application-mode JobManagers (standalone-job --job-classname
// com.example.StreamingJob, the jar in /opt/flink/usrlib): tests/node's application layout and
// make run's node demo, where it stands in for the job of manifests/examples'
// application-mode example (its usrlib is an emptyDir for a user's jar). An unbounded sequence,
// printed: with no TaskManager the job waits for slots, which is all a JobManager needs to run.
package com.example;

import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;

public final class StreamingJob {
    private StreamingJob() {}

    public static void main(String[] args) throws Exception {
        StreamExecutionEnvironment env = StreamExecutionEnvironment.getExecutionEnvironment();
        env.fromSequence(0, Long.MAX_VALUE).print();
        env.execute("fmw-idle");
    }
}
