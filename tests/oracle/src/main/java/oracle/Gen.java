package oracle;

import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;

/**
 * Seeded generator of JobManager memory configurations. Case {@code id} of run {@code seed} is a
 * pure function of (seed, id, Flink line), so any single case can be regenerated.
 *
 * <p>A case first picks values with meaning (byte counts, fractions) biased towards the edges of
 * Flink's algorithm (overhead clamping at min/max, Total Flink equal to off-heap, heap + off-heap
 * equal to Total Flink, metaspace + overhead equal to Total Process, fraction-multiply rounding),
 * then spells them (units in any case, spaces, tabs, leading zeros, quotes, YAML types), may
 * replace one with a bad spelling, and places each in the file, in -D, or both. About 60% of the
 * cases resolve.
 */
final class Gen extends Spelling {
    static final String PROCESS = "jobmanager.memory.process.size";
    static final String FLINK = "jobmanager.memory.flink.size";
    static final String HEAP = "jobmanager.memory.heap.size";
    static final String OFF = "jobmanager.memory.off-heap.size";
    static final String META = "jobmanager.memory.jvm-metaspace.size";
    static final String OMIN = "jobmanager.memory.jvm-overhead.min";
    static final String OMAX = "jobmanager.memory.jvm-overhead.max";
    static final String FRACTION = "jobmanager.memory.jvm-overhead.fraction";
    static final String DIRECT = "jobmanager.memory.enable-jvm-direct-memory-limit";
    static final String LEGACY_HEAP = "jobmanager.heap.size";
    static final String LEGACY_MB = "jobmanager.heap.mb";

    Gen(int major, int minor) {
        super(major, minor);
    }

    // ---------------------------------------------------------------------------------------------
    // The case

    /** The values a case means, with the effective defaults used to aim at edges. */
    private final class Plan {
        final Map<String, Val> values = new LinkedHashMap<>();
        long off = 128 * MB, meta = 256 * MB, min = 192 * MB, max = GB;
        double fraction = 0.1f;
    }

    Case generate(long seed, int id) {
        r = new Random(mix(seed, id));
        Case c = new Case();
        c.target = !is1x() ? "none" : pick("heap", "heap", "heap", "heap", "heap", "heap", "heap",
            "process", "process", "none");
        Plan p = new Plan();

        // Optional fine-grained settings first: the main sizes aim at edges computed from them.
        if (chance(0.30)) {
            p.off = pickOffHeap();
            p.values.put(OFF, size(p.off));
        }
        if (chance(0.25)) {
            p.meta = pickMetaspace();
            p.values.put(META, size(p.meta));
        }
        if (chance(0.25)) {
            p.min = pickOverheadBound(true);
            p.values.put(OMIN, size(p.min));
        }
        if (chance(0.25)) {
            p.max = pickOverheadBound(false);
            if (p.max < p.min && chance(0.7)) {
                p.max = p.min + (chance(0.3) ? 0 : pickOverheadBound(false));
            }
            p.values.put(OMAX, size(p.max));
        }
        if (chance(0.30)) {
            p.values.put(FRACTION, fraction(p));
        }
        if (chance(0.20)) {
            p.values.put(DIRECT, bool(true));
        }

        // Which of heap / Total Flink / Total Process are set.
        switch (weighted(34, 12, 12, 9, 8, 8, 5, is1x() ? 10 : 4)) {
            case 0:
                p.values.put(PROCESS, size(pickProcess(p)));
                break;
            case 1:
                p.values.put(FLINK, size(pickFlink(p)));
                break;
            case 2:
                p.values.put(HEAP, size(pickHeap()));
                break;
            case 3: {
                long heap = pickHeap();
                p.values.put(HEAP, size(heap));
                p.values.put(FLINK, size(flinkFromHeap(p, heap)));
                break;
            }
            case 4: {
                long heap = pickHeap();
                p.values.put(HEAP, size(heap));
                p.values.put(PROCESS, size(processAround(p, heap + p.off)));
                break;
            }
            case 5: {
                long flink = pickFlink(p);
                p.values.put(FLINK, size(flink));
                p.values.put(PROCESS, size(processAround(p, flink)));
                break;
            }
            case 6: {
                long heap = pickHeap();
                long flink = flinkFromHeap(p, heap);
                p.values.put(HEAP, size(heap));
                p.values.put(FLINK, size(flink));
                p.values.put(PROCESS, size(processAround(p, flink)));
                break;
            }
            default:
                break; // none: legacy keys, or the "configure one of three" error
        }
        boolean noneOfThree = !p.values.containsKey(HEAP) && !p.values.containsKey(FLINK)
            && !p.values.containsKey(PROCESS);

        // Legacy settings: 1.x uses them when the legacy target key is absent; 2.x must ignore them.
        double legacy = is1x() ? (noneOfThree ? 0.8 : 0.25) : 0.12;
        if (chance(legacy)) {
            legacyHeap(c, p.values, LEGACY_HEAP, LEGACY_MB);
        }
        oneBadValue(p.values, this::badValue);

        place(c, p);
        return c;
    }

    // ---------------------------------------------------------------------------------------------
    // Values with meaning

    private long pickOffHeap() {
        switch (weighted(4, 2, 3, 2, 1)) {
            case 0: return mib(pick(128L, 64L, 256L, 512L, 1024L, 32L, 96L));
            case 1: return pick(0L, 1L, KB, mib(1));
            case 2: return mib(between(0, 2048));
            case 3: return ragged(0, 2 * GB);
            default: return pick(mib(128) - 1, mib(128) + 1, 3 * GB, 8 * GB);
        }
    }

    private long pickMetaspace() {
        switch (weighted(4, 2, 3, 2)) {
            case 0: return mib(pick(256L, 96L, 128L, 384L, 512L, 64L, 1024L));
            case 1: return pick(0L, 1L, KB, mib(1));
            case 2: return mib(between(0, 1536));
            default: return ragged(0, GB);
        }
    }

    private long pickOverheadBound(boolean isMin) {
        switch (weighted(5, 2, 3, 2)) {
            case 0: return mib(isMin ? pick(192L, 64L, 128L, 256L, 100L, 0L, 1024L)
                : pick(1024L, 256L, 512L, 2048L, 192L, 128L, 4096L));
            case 1: return pick(0L, 1L, KB, mib(1), 16 * GB);
            case 2: return mib(between(0, isMin ? 768 : 3072));
            default: return ragged(0, isMin ? GB : 3 * GB);
        }
    }

    /** Total Process Memory, often near an edge of the process-only branch. */
    private long pickProcess(Plan p) {
        double f = validFraction(p.fraction) ? p.fraction : 0.1f;
        long d = between(-3, 3);
        switch (weighted(6, 5, 4, 3, 2, 2, 2, 2, 1)) {
            case 0: return mib(pick(1600L, 1024L, 2048L, 4096L, 8192L, 1728L, 3072L, 768L, 1000L, 16384L));
            case 1: return mib(between(256, 20480));
            case 2: return ragged(300 * MB, 16 * GB);
            case 3: return f > 0 ? Math.max(0, (long) (p.min / f) + d) : mib(between(300, 4096)); // raw overhead = min
            case 4: return f > 0 ? Math.max(0, (long) (p.max / f) + d) : mib(between(300, 4096)); // raw overhead = max
            case 5: return Math.max(0, p.meta + p.min + d); // metaspace + overhead = process
            case 6: return Math.max(0, p.meta + p.min + p.off + d); // Total Flink = off-heap
            case 7: return pick(0L, 1L, mib(100), mib(448), mib(576), GB - 1);
            default: return pick(TB, 1000 * GB, 8388607 * TB, Long.MAX_VALUE, Long.MAX_VALUE / 2, 8589934591L * GB);
        }
    }

    /** Total Flink Memory, often near off-heap (the "less than off-heap" edge). */
    private long pickFlink(Plan p) {
        switch (weighted(5, 4, 3, 3, 1)) {
            case 0: return mib(pick(1024L, 1280L, 512L, 2048L, 4096L, 200L, 768L));
            case 1: return mib(between(0, 8192));
            case 2: return ragged(0, 6 * GB);
            case 3: return Math.max(0, p.off + between(-2, 2));
            default: return pick(0L, TB, Long.MAX_VALUE, Long.MAX_VALUE - GB);
        }
    }

    private long pickHeap() {
        switch (weighted(5, 4, 3, 1)) {
            case 0: return mib(pick(1024L, 512L, 128L, 64L, 10L, 2048L, 150L, 127L));
            case 1: return mib(between(0, 8192));
            case 2: return ragged(0, 6 * GB);
            default: return pick(0L, 1L, mib(128) - 1, TB, Long.MAX_VALUE);
        }
    }

    /** Total Flink for a configured heap: mostly heap + off-heap exactly, sometimes off by a bit. */
    private long flinkFromHeap(Plan p, long heap) {
        long exact = heap + p.off;
        if (exact < 0) {
            return Long.MAX_VALUE;
        }
        switch (weighted(6, 2, 2, 1)) {
            case 0: return exact;
            case 1: return Math.max(0, exact + pick(-1L, 1L, -MB, MB));
            case 2: return Math.max(0, heap + longBelow(2 * GB)); // off-heap derived (when not set); 0 on overflow
            default: return Math.max(0, heap - pick(1L, MB));
        }
    }

    /** Total Process around Total Flink + metaspace + an overhead at or near its range. */
    private long processAround(Plan p, long totalFlink) {
        long base = totalFlink + p.meta;
        if (base < 0) {
            return Long.MAX_VALUE;
        }
        long lo = Math.min(p.min, p.max), hi = Math.max(p.min, p.max);
        long overhead;
        switch (weighted(4, 2, 2, 2, 1, 1)) {
            case 0: overhead = lo + longBelow(hi - lo + 1); break;
            case 1: overhead = lo; break;
            case 2: overhead = hi; break;
            case 3: overhead = pick(lo - 1, hi + 1); break;
            case 4: overhead = -between(1, 100) * MB; break; // less than Total Flink + metaspace
            default: overhead = mib(between(0, 2048)); break;
        }
        return Math.max(0, base + overhead);
    }

    private static boolean validFraction(double f) {
        return f >= 0 && f < 1;
    }

    /** A spelled fraction; the plan keeps its float value (0.1f when Java does not parse it). */
    private Val fraction(Plan p) {
        Val v = fraction();
        try {
            p.fraction = Float.parseFloat(v.text);
        } catch (NumberFormatException e) {
            p.fraction = 0.1f;
        }
        return v;
    }

    // ---------------------------------------------------------------------------------------------
    // Spellings

    private Val badValue(String key) {
        if (key.equals(FRACTION)) {
            String text = pick("1", "1.0", "-0.1", "NaN", "Infinity", "-Infinity", "1.5", "abc", "", "0,1", "1/10",
                "10%", "0.1.1", "-0", "-0.0", "0.99999999", "3.4028236e38", "1e40", "0x1p0", "nan", ".nan");
            Form form = Form.STRING;
            if (hasStandardYaml() && chance(0.4)) {
                form = isSafeRaw(text) ? Form.RAW : Form.SINGLE_QUOTED;
            }
            return new Val(text, form);
        }
        if (key.equals(DIRECT)) {
            return bool(false);
        }
        if (key.equals(LEGACY_MB)) {
            return new Val(pick("-1", "1024m", "2147483648", "1e3", "0x400", "", "abc", "1.5", "-2147483648"), Form.STRING);
        }
        return badSize();
    }

    // ---------------------------------------------------------------------------------------------
    // Placement: file, -D, both

    private static final String[][] NOISE = {
        {"jobmanager.rpc.address", "localhost"}, {"jobmanager.rpc.address", "flink-jobmanager"},
        {"jobmanager.rpc.port", "6123"}, {"taskmanager.numberOfTaskSlots", "2"}, {"parallelism.default", "1"},
        {"taskmanager.memory.process.size", "1728m"}, {"rest.port", "8081"}, {"blob.server.port", "6124"},
        {"env.java.opts.jobmanager", "-Xmx2g -XX:+UseG1GC"}, {"kubernetes.jobmanager.cpu", "1.0"},
        {"state.backend.type", "rocksdb"}, {"high-availability.type", "NONE"},
        {"JobManager.Memory.Process.Size", "64m"}, {"jobmanager.memory.process-size", "64m"},
        {"jobmanager.memory.heap-size", "1"}, {"JOBMANAGER.MEMORY.HEAP.SIZE", "3g"},
        {"jobmanager.memory.off_heap.size", "abc"}, {"taskmanager.memory.jvm-overhead.fraction", "2"},
        {"jobmanager.memory.jvm-overhead.fractions", "x"}, {"execution.checkpointing.interval", "10 s"},
    };

    private void place(Case c, Plan p) {
        boolean withFile;
        boolean yaml;
        if (major >= 2) {
            withFile = chance(0.9);
            yaml = true;
        } else if (hasStandardYaml()) {
            withFile = true;
            yaml = chance(0.55);
        } else {
            withFile = chance(0.88);
            yaml = false;
        }
        boolean onlyDynamic = !withFile || chance(0.06);

        List<Object[]> fileEntries = new ArrayList<>(); // {key, Val}
        for (Map.Entry<String, Val> e : p.values.entrySet()) {
            String key = e.getKey();
            Val v = e.getValue();
            int where = onlyDynamic ? 1 : weighted(70, 18, 12); // file, -D, both
            if (where == 0) {
                fileEntries.add(new Object[] {key, v});
            } else if (where == 1) {
                c.dynamic.add(new String[] {key, v.text});
            } else {
                // The -D value wins; the file holds something else, sometimes unusable.
                Val shadow = chance(0.5) ? badValue(key) : size(mib(between(1, 4096)));
                if (key.equals(FRACTION)) {
                    shadow = new Val(pick("0.5", "abc", "2"), Form.STRING);
                } else if (key.equals(DIRECT)) {
                    shadow = bool(chance(0.5));
                }
                fileEntries.add(new Object[] {key, shadow});
                c.dynamic.add(new String[] {key, v.text});
            }
        }
        // A -D repeated: the later one wins.
        if (!c.dynamic.isEmpty() && chance(0.05)) {
            String[] kv = c.dynamic.get(r.nextInt(c.dynamic.size()));
            c.dynamic.add(r.nextInt(c.dynamic.size() + 1), new String[] {kv[0], spell(mib(between(1, 4096)))});
        }
        // Noise settings.
        int noise = weighted(4, 3, 2, 1);
        for (int i = 0; i < noise; i++) {
            String[] kv = NOISE[r.nextInt(NOISE.length)];
            if (chance(0.85) && !onlyDynamic) {
                fileEntries.add(new Object[] {kv[0], new Val(kv[1], Form.STRING)});
            } else {
                c.dynamic.add(r.nextInt(c.dynamic.size() + 1), kv.clone());
            }
        }
        Collections.shuffle(fileEntries, r);

        if (!withFile) {
            c.fileName = null;
            return;
        }
        if (fileEntries.isEmpty() && chance(0.5)) {
            c.fileName = yaml ? "config.yaml" : "flink-conf.yaml";
            c.fileText = pick("", "\n", "# empty\n");
            return;
        }
        c.fileName = yaml ? "config.yaml" : "flink-conf.yaml";
        c.fileText = yaml ? new YamlWriter(r).write(fileEntries) : legacyFile(fileEntries);
        if (chance(0.03)) {
            c.fileText = c.fileText.replace("\n", "\r\n");
        }
    }

}
