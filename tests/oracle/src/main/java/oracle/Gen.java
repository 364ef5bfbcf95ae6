package oracle;

import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
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
final class Gen {
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

    static final long KB = 1L << 10, MB = 1L << 20, GB = 1L << 30, TB = 1L << 40;

    /** How a value is written in standard YAML; legacy files and -D always take the text as is. */
    enum Form {
        /** A string: plain when YAML would read it back as the same string, else single-quoted. */
        STRING,
        SINGLE_QUOTED,
        DOUBLE_QUOTED,
        /** YAML source text, emitted as is (typed scalars, flow lists, null, ...). */
        RAW
    }

    /** A spelled value. */
    static final class Val {
        final String text;
        final Form form;

        Val(String text, Form form) {
            this.text = text;
            this.form = form;
        }

        @Override
        public String toString() {
            return text;
        }
    }

    private final int major, minor;
    private Random r;

    Gen(int major, int minor) {
        this.major = major;
        this.minor = minor;
    }

    private boolean is1x() {
        return major == 1;
    }

    private boolean hasStandardYaml() {
        return major >= 2 || minor >= 19;
    }

    // ---------------------------------------------------------------------------------------------
    // Random helpers

    private static long mix(long seed, long id) {
        long z = seed * 0x9E3779B97F4A7C15L + id + 0x632BE59BD9B4E019L;
        z = (z ^ (z >>> 30)) * 0xBF58476D1CE4E5B9L;
        z = (z ^ (z >>> 27)) * 0x94D049BB133111EBL;
        return z ^ (z >>> 31);
    }

    private boolean chance(double p) {
        return r.nextDouble() < p;
    }

    private int between(int lo, int hi) {
        return lo + r.nextInt(hi - lo + 1);
    }

    private long longBelow(long bound) {
        return bound <= 0 ? 0 : (r.nextLong() >>> 1) % bound;
    }

    @SafeVarargs
    private final <T> T pick(T... xs) {
        return xs[r.nextInt(xs.length)];
    }

    /** Picks an index by weight. */
    private int weighted(int... weights) {
        int total = 0;
        for (int w : weights) {
            total += w;
        }
        int x = r.nextInt(total);
        for (int i = 0; i < weights.length; i++) {
            x -= weights[i];
            if (x < 0) {
                return i;
            }
        }
        return weights.length - 1;
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
            switch (weighted(4, 4, 3)) {
                case 0:
                    c.envHeap = legacySize().text;
                    break;
                case 1:
                    p.values.put(LEGACY_HEAP, legacySize());
                    break;
                default:
                    p.values.put(LEGACY_MB, heapMb());
                    break;
            }
            if (chance(0.25)) {
                p.values.put(LEGACY_MB, heapMb());
            }
            if (chance(0.15)) {
                p.values.put(LEGACY_HEAP, legacySize());
            }
            if (chance(0.1)) {
                c.envHeap = legacySize().text;
            }
        }

        // One bad spelling in some cases.
        if (!p.values.isEmpty() && chance(0.11)) {
            List<String> keys = new ArrayList<>(p.values.keySet());
            String key = keys.get(r.nextInt(keys.size()));
            p.values.put(key, badValue(key));
        }

        place(c, p);
        return c;
    }

    // ---------------------------------------------------------------------------------------------
    // Values with meaning

    private long mib(long n) {
        return n * MB;
    }

    /** A size with a random low part, so that it is not a round number of MiB. */
    private long ragged(long lo, long hi) {
        return lo + longBelow(hi - lo + 1);
    }

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

    // ---------------------------------------------------------------------------------------------
    // Spellings

    private String withCase(String unit) {
        switch (weighted(14, 3, 3)) {
            case 0: return unit;
            case 1: return unit.toUpperCase(Locale.ROOT);
            default: {
                StringBuilder b = new StringBuilder();
                for (char ch : unit.toCharArray()) {
                    b.append(r.nextBoolean() ? Character.toUpperCase(ch) : ch);
                }
                return b.toString();
            }
        }
    }

    /** A valid spelling of a byte count: any unit that divides it, any of its names and cases. */
    private String spell(long bytes) {
        List<Long> units = new ArrayList<>();
        for (long u : new long[] {1, KB, MB, GB, TB}) {
            if (bytes % u == 0) {
                units.add(u);
            }
        }
        // Prefer the largest unit, as people write sizes.
        long unit = chance(0.6) ? units.get(units.size() - 1) : units.get(r.nextInt(units.size()));
        String number = Long.toString(bytes / unit);
        if (chance(0.04)) {
            number = pick("0", "00", "000000") + number;
        }
        String name;
        if (unit == 1) {
            name = pick("", "", "", "b", "bytes");
        } else if (unit == KB) {
            name = pick("k", "kb", "kibibytes");
        } else if (unit == MB) {
            name = pick("m", "m", "mb", "mebibytes");
        } else if (unit == GB) {
            name = pick("g", "g", "gb", "gibibytes");
        } else {
            name = pick("t", "tb", "tebibytes");
        }
        name = withCase(name);
        String sep = name.isEmpty() ? "" : pick("", "", "", "", " ", " ", "  ", "\t");
        return number + sep + name;
    }

    /** A size value: a spelling, in YAML mostly as a plain or quoted string, sometimes an int. */
    private Val size(long bytes) {
        String s = spell(bytes);
        switch (weighted(20, 3, 2, 2, 1)) {
            case 0: return new Val(s, Form.STRING);
            case 1: return new Val(Long.toString(bytes), Form.RAW); // YAML int, bytes
            case 2: return new Val(s, Form.SINGLE_QUOTED);
            case 3: return new Val(s, Form.DOUBLE_QUOTED);
            default:
                // Surrounding blanks: trimmed by the legacy parser and by MemorySize.
                return new Val(pick(" ", "\t", "  ") + s + pick(" ", "\t", ""), Form.DOUBLE_QUOTED);
        }
    }

    private Val fraction(Plan p) {
        String text;
        Form form = Form.STRING;
        switch (weighted(6, 5, 3, 2)) {
            case 0:
                text = pick("0.1", "0.2", "0.25", "0.15", "0.01", "0.5", "0.05", "0.3", "0.125", "0.9", "0.4");
                break;
            case 1: {
                int digits = between(1, 7);
                long n = longBelow((long) Math.pow(10, digits));
                text = String.format(Locale.ROOT, "0.%0" + digits + "d", n);
                break;
            }
            case 2:
                text = Float.toString(r.nextFloat());
                break;
            default:
                text = pick("0", "0.0", ".5", "0.1f", "0.2F", "0.25d", "1e-1", "2.5E-1", "0x1p-3", "0x1.8p-2", " 0.2 ",
                    "0.10000000149011612", "1.4e-45", "1e-50", "0.99999999", "+0.3", "00.1");
                break;
        }
        if (hasStandardYaml() && chance(0.25)) {
            form = pick(Form.RAW, Form.SINGLE_QUOTED, Form.DOUBLE_QUOTED);
            if (form == Form.RAW && !text.matches("[0-9.]+")) {
                form = Form.STRING;
            }
        }
        try {
            p.fraction = Float.parseFloat(text);
        } catch (NumberFormatException e) {
            p.fraction = 0.1f;
        }
        return new Val(text, form);
    }

    private Val bool(boolean valid) {
        String text = valid ? pick("true", "false", "true", "false", "TRUE", "False", "tRuE", "FALSE")
            : pick("yes", "no", "1", "0", "on", "t", "", "truee", " true", "true ", "'true'", "\"false\"");
        if (hasStandardYaml() && valid && chance(0.3)) {
            return new Val(text, pick(Form.RAW, Form.SINGLE_QUOTED, Form.DOUBLE_QUOTED));
        }
        return new Val(text, Form.STRING);
    }

    /** jobmanager.heap.size or FLINK_JM_HEAP: a plausible legacy heap, sometimes odd. */
    private Val legacySize() {
        switch (weighted(6, 2, 1, 1)) {
            case 0: return new Val(spell(mib(pick(1024L, 512L, 768L, 2048L, 1600L, 4096L, 10L, 256L))), Form.STRING);
            case 1: return new Val(spell(mib(between(16, 8192))), Form.STRING);
            case 2: return new Val(pick("1024", "1073741824", "0", "2g ", " 1g"), Form.STRING);
            default: return badSize();
        }
    }

    private Val heapMb() {
        switch (weighted(6, 2, 2)) {
            case 0: return new Val(pick("1024", "512", "768", "2048", "1600", "4096", "10", "256"), Form.STRING);
            case 1: return new Val(Integer.toString(between(0, 8192)), hasStandardYaml() && chance(0.3) ? Form.RAW : Form.STRING);
            default:
                return new Val(pick("0", "-1", "-100", " 1024 ", "1024m", "2147483647", "2147483648", "1e3", "0x400",
                    "+512", "01024", "1024.0", "", "abc", "9999999999"), Form.STRING);
        }
    }

    private Val badSize() {
        String text = pick("1.5g", "-1g", "+1g", "1 GiB", "2Gi", "0x10", "1e3", "", " ", "1 g b", "10 mib", "abc", "g",
            "9223372036854775808", "8589934592g", "99999999999999999999", "9223372036854775807", "1,024m", "1_024m",
            "\uff11g", "\"1g\"", "'1g'", "1g;", "0", "1", "1k", "1024 kilobytes", "1gb b", "1 000m", "0.5 gb", "1G B",
            "16 16 17 18 bytes", "1bytes b", "8388608t", "8388607t");
        Form form = Form.STRING;
        if (hasStandardYaml()) {
            form = pick(Form.STRING, Form.STRING, Form.RAW, Form.SINGLE_QUOTED);
            if (form == Form.RAW && !isSafeRaw(text)) {
                form = Form.STRING;
            }
        }
        return new Val(text, form);
    }

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

    private boolean isSafeRaw(String text) {
        return !text.isEmpty() && text.matches("[A-Za-z0-9.+_-]+") && !text.startsWith("-");
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

    /** A flink-conf.yaml as people write them, including lines Flink's line parser skips. */
    private String legacyFile(List<Object[]> entries) {
        StringBuilder b = new StringBuilder();
        if (chance(0.3)) {
            b.append("#==============================================================================\n")
                .append("# Common\n#==============================================================================\n\n");
        }
        for (Object[] e : entries) {
            String key = (String) e[0];
            String value = ((Val) e[1]).text;
            if (chance(0.15)) {
                b.append(pick("\n", "# The heap size for the JobManager JVM\n", "#jobmanager.memory.process.size: 1g\n",
                    "   \n", "# key: value # with: colons\n"));
            }
            if (chance(0.06)) {
                // An earlier duplicate: the last one wins.
                b.append(key).append(": ").append(spell(mib(between(1, 4096)))).append('\n');
            }
            switch (weighted(70, 6, 5, 5, 3, 3, 3, 2, 2, 1)) {
                case 0: b.append(key).append(": ").append(value); break;
                case 1: b.append(key).append(":  ").append(value).append("  "); break;
                case 2: b.append("  ").append(key).append(" : ").append(value); break;
                case 3:
                    b.append(key).append(": ").append(value).append(pick(" # comment", "# no space", "\t# tab"));
                    break;
                case 4: b.append(key).append(':').append(value); break; // no space: skipped
                case 5: b.append(key).append(":\t").append(value); break; // tab: skipped
                case 6: b.append("# ").append(key).append(": ").append(value); break; // commented out
                case 7: b.append(key).append(": "); break; // empty value: skipped
                case 8: b.append(key).append("\t: ").append(value); break;
                default: b.append(key).append(": ").append('"').append(value).append('"'); break; // quotes kept
            }
            b.append('\n');
        }
        if (chance(0.1)) {
            b.append(pick("some nonsense line\n", ": orphan value\n", "- listitem\n", "key.without.value:\n"));
        }
        String text = b.toString();
        if (chance(0.05) && text.endsWith("\n")) {
            text = text.substring(0, text.length() - 1); // no final newline
        }
        return text;
    }
}
