// A Java agent for tests/node: fills the heap of the JVM it is loaded into (a Flink JobManager or
// TaskManager, -javaagent in JAVA_TOOL_OPTIONS), when asked, as far as that JVM's own heap limit
// lets it; and, when asked, its direct memory too, as far as -XX:MaxDirectMemorySize lets it.
// With the sizes Flink computed and the pod limit the webhook set, the container stays under its
// limit; with a -Xmx larger than Flink's under the same limit, the kernel kills it (exit 137).
//
// Asked by creating /tmp/fmw-fill (kubectl exec ... touch, or a file holding "direct" to fill
// the direct memory first). Direct memory: 1 MiB buffers (allocateDirect zeroes them, so their
// pages are touched) until the JVM says OutOfMemoryError, then the last 8 MiB are let go (a
// TaskManager's own threads allocate some). The heap: 256 KiB arrays (small enough never to be
// humongous in G1) until the heap is committed to its maximum and less than 16 MiB of it is free,
// or the JVM says OutOfMemoryError (the chunks of the last 16 MiB are let go then, so that the
// process's own threads can go on). It then prints one line, writes the same line to
// /tmp/fmw-fill.done and holds what it filled for as long as the JVM lives.
package fmw;

import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

public final class Fill {
    private static final int CHUNK = 256 * 1024;
    private static final long SLACK = 16L << 20;
    private static final int DIRECT_CHUNK = 1 << 20;
    private static final long DIRECT_SLACK = 8L << 20;
    private static final List<byte[]> HELD = new ArrayList<>();
    private static final List<ByteBuffer> HELD_DIRECT = new ArrayList<>();

    private Fill() {}

    public static void premain(String args) {
        Thread t = new Thread(Fill::run, "fmw-fill");
        t.setDaemon(true);
        t.start();
    }

    private static void run() {
        Path trigger = Path.of("/tmp/fmw-fill");
        try {
            while (!Files.exists(trigger)) {
                Thread.sleep(100);
            }
            String asked = new String(Files.readAllBytes(trigger), StandardCharsets.UTF_8);
            String direct = "";
            if (asked.contains("direct")) {
                try {
                    while (true) {
                        HELD_DIRECT.add(ByteBuffer.allocateDirect(DIRECT_CHUNK));
                    }
                } catch (OutOfMemoryError e) {
                    for (long freed = 0; freed < DIRECT_SLACK && !HELD_DIRECT.isEmpty();
                            freed += DIRECT_CHUNK) {
                        HELD_DIRECT.remove(HELD_DIRECT.size() - 1);
                    }
                }
                direct = String.format("; direct held %d MiB",
                        ((long) HELD_DIRECT.size() * DIRECT_CHUNK) >> 20);
            }
            Runtime rt = Runtime.getRuntime();
            long max = rt.maxMemory();
            String how = "heap committed to its maximum";
            try {
                while (rt.totalMemory() < max || rt.freeMemory() > SLACK) {
                    byte[] b = new byte[CHUNK];
                    b[b.length - 1] = 1;
                    HELD.add(b);
                }
            } catch (OutOfMemoryError e) {
                for (long freed = 0; freed < SLACK && !HELD.isEmpty(); freed += CHUNK) {
                    HELD.remove(HELD.size() - 1);
                }
                how = "OutOfMemoryError";
            }
            long held = (long) HELD.size() * CHUNK;
            String line = String.format("fmw-fill: held %d MiB; heap max %d, committed %d (%s)%s%n",
                    held >> 20, max, rt.totalMemory(), how, direct);
            System.out.print(line);
            System.out.flush();
            Files.write(Path.of("/tmp/fmw-fill.done"), line.getBytes(StandardCharsets.UTF_8));
            while (true) {
                Thread.sleep(60_000);
            }
        } catch (Exception e) {
            System.out.println("fmw-fill: " + e);
        }
    }
}
