// The job of tests/node's application-mode JobManagers (standalone-job --job-classname
// fmw.IdleJob, the jar in /opt/flink/usrlib): an unbounded sequence printed. With no TaskManager
// it waits for slots, which is all these tests need: a JobManager that runs its job's
// application, not one that ends because the class is missing.
package fmw;

import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;

public final class IdleJob {
    private IdleJob() {}

    public static void main(String[] args) throws Exception {
        StreamExecutionEnvironment env = StreamExecutionEnvironment.getExecutionEnvironment();
        env.fromSequence(0, Long.MAX_VALUE).print();
        env.execute("fmw-idle");
    }
}
