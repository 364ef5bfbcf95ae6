package oracle;

import java.math.BigDecimal;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;

/**
 * Seeded generator of TaskManager memory configurations, the sibling of {@link Gen}. Case
 * {@code id} of run {@code seed} is a pure function of (seed, id, Flink line); the TaskManager
 * cases of a seed are not the JobManager cases of that seed.
 *
 * <p>A case picks values with meaning first: the fine-grained components (framework heap and
 * off-heap, task off-heap), the network range and fraction (new or deprecated keys, or both),
 * the managed fraction, the legacy number of buffers and page size, the JVM Metaspace and
 * Overhead; then which of task heap, managed memory, Total Flink and Total Process are set,
 * aimed at the edges of TaskExecutorFlinkMemoryUtils computed from those values: the derived
 * task heap exactly 0 (± 2 bytes), the network memory left over exactly at its min or max (± 1)
 * or at buffers × page size, fraction × total crossing the network range, overhead at its range,
 * sums past 2^63 − 1. CPU cores, slots and external resources (names, list spellings, amounts),
 * the legacy heap (taskmanager.heap.size / .mb, FLINK_TM_HEAP) and one bad value follow, and the
 * placement in flink-conf.yaml, config.yaml or -D as {@link Gen} does. Roughly half resolve.
 */
final class TmGen extends Spelling {
    static final String PROCESS = "taskmanager.memory.process.size";
    static final String FLINK = "taskmanager.memory.flink.size";
    static final String FW_HEAP = "taskmanager.memory.framework.heap.size";
    static final String FW_OFF = "taskmanager.memory.framework.off-heap.size";
    static final String TASK_HEAP = "taskmanager.memory.task.heap.size";
    static final String TASK_OFF = "taskmanager.memory.task.off-heap.size";
    static final String MANAGED = "taskmanager.memory.managed.size";
    static final String MANAGED_FRACTION = "taskmanager.memory.managed.fraction";
    static final String NET_MIN = "taskmanager.memory.network.min";
    static final String NET_MAX = "taskmanager.memory.network.max";
    static final String NET_FRACTION = "taskmanager.memory.network.fraction";
    static final String META = "taskmanager.memory.jvm-metaspace.size";
    static final String OMIN = "taskmanager.memory.jvm-overhead.min";
    static final String OMAX = "taskmanager.memory.jvm-overhead.max";
    static final String OFRACTION = "taskmanager.memory.jvm-overhead.fraction";
    static final String SEGMENT = "taskmanager.memory.segment-size";
    static final String CPU = "taskmanager.cpu.cores";
    static final String SLOTS = "taskmanager.numberOfTaskSlots";
    static final String RESOURCES = "external-resources";
    static final String LEGACY_MANAGED = "taskmanager.memory.size";
    static final String LEGACY_NET_MIN = "taskmanager.network.memory.min";
    static final String LEGACY_NET_MAX = "taskmanager.network.memory.max";
    static final String LEGACY_NET_FRACTION = "taskmanager.network.memory.fraction";
    static final String BUFFERS = "taskmanager.network.numberOfBuffers";
    static final String LEGACY_HEAP = "taskmanager.heap.size";
    static final String LEGACY_MB = "taskmanager.heap.mb";

    /** Keeps the TaskManager cases of a seed apart from its JobManager cases. */
    private static final long SALT = 0x7A5C3E11D2B4F609L;

    /** Names of external resources: plain, dotted, upper case, blank inside, non-ASCII. */
    private static final String[] RESOURCE_NAMES = {"gpu", "fpga", "tpu", "a", "b.c", "GPU", "x y", "yarn",
        "k8s-gpu", "\u00fcber", "n1", "n2", "n3"};

    TmGen(int major, int minor) {
        super(major, minor);
    }

    /** The values a case means, with the effective defaults used to aim at edges. */
    private final class Plan {
        final Map<String, Val> values = new LinkedHashMap<>();
        long fwHeap = 128 * MB, fwOff = 128 * MB, taskOff = 0, meta = 256 * MB, omin = 192 * MB, omax = GB;
        long nmin = 64 * MB, nmax = major > 1 || minor >= 17 ? Long.MAX_VALUE : GB;
        float ofrac = 0.1f, nfrac = 0.1f, mfrac = 0.4f;
        /** Explicit managed memory, or -1 when it is derived. */
        long managed = -1;
        /** Buffers × page size when the legacy network reading applies (1.x), else -1. */
        long legacyNetwork = -1;
        /** Where the file goes: a config.yaml can hold block lists, -D and flink-conf.yaml not. */
        boolean withFile, yaml, onlyDynamic;
    }

    Case generate(long seed, int id) {
        r = new Random(mix(seed ^ SALT, id));
        Case c = new Case();
        c.role = Case.TASKMANAGER;
        c.target = is1x() ? pick("flink", "flink", "flink", "flink", "flink", "flink", "flink", "process", "process",
            "none") : (chance(0.9) ? "flink" : "none");
        Plan p = new Plan();
        if (major >= 2) {
            p.withFile = chance(0.9);
            p.yaml = true;
        } else if (hasStandardYaml()) {
            p.withFile = true;
            p.yaml = chance(0.55);
        } else {
            p.withFile = chance(0.88);
            p.yaml = false;
        }
        p.onlyDynamic = !p.withFile || chance(0.06);

        // Optional fine-grained settings first: the main sizes aim at edges computed from them.
        if (chance(0.15)) {
            p.fwHeap = pickComponent();
            p.values.put(FW_HEAP, size(p.fwHeap));
        }
        if (chance(0.15)) {
            p.fwOff = pickComponent();
            p.values.put(FW_OFF, size(p.fwOff));
        }
        if (chance(0.2)) {
            p.taskOff = chance(0.5) ? 0 : pickComponent();
            p.values.put(TASK_OFF, size(p.taskOff));
        }
        if (chance(0.2)) {
            p.meta = pickMetaspace();
            p.values.put(META, size(p.meta));
        }
        if (chance(0.15)) {
            p.omin = pickOverheadBound(true);
            p.values.put(OMIN, size(p.omin));
        }
        if (chance(0.15)) {
            p.omax = pickOverheadBound(false);
            if (p.omax < p.omin && chance(0.7)) {
                p.omax = p.omin + (chance(0.3) ? 0 : pickOverheadBound(false));
            }
            p.values.put(OMAX, size(p.omax));
        }
        if (chance(0.15)) {
            Val v = fraction();
            p.ofrac = floatOf(v, p.ofrac);
            p.values.put(OFRACTION, v);
        }
        boolean anyNetwork = false;
        if (chance(0.2)) {
            p.nmin = pickNetworkBound(true);
            putMaybeDeprecated(p, NET_MIN, LEGACY_NET_MIN, size(p.nmin));
            anyNetwork = true;
        }
        if (chance(0.2)) {
            p.nmax = pickNetworkBound(false);
            if (p.nmax < p.nmin && chance(0.7)) {
                p.nmax = p.nmin + (chance(0.3) ? 0 : pickNetworkBound(false));
            }
            putMaybeDeprecated(p, NET_MAX, LEGACY_NET_MAX, size(p.nmax));
            anyNetwork = true;
        }
        if (chance(0.25)) {
            Val v = fraction();
            p.nfrac = floatOf(v, p.nfrac);
            putMaybeDeprecated(p, NET_FRACTION, LEGACY_NET_FRACTION, v);
            anyNetwork = true;
        }
        if (chance(0.2)) {
            Val v = fraction();
            p.mfrac = floatOf(v, p.mfrac);
            p.values.put(MANAGED_FRACTION, v);
        }
        // The legacy network reading (1.x; 2.x has no such option and must ignore it).
        if (chance(is1x() ? 0.15 : 0.05)) {
            int buffers = pickBuffers();
            p.values.put(BUFFERS, integer(buffers));
            long segment = 32 * KB;
            if (chance(0.4)) {
                segment = pick(4 * KB, 8 * KB, 16 * KB, 64 * KB, MB, 32 * KB, GB);
                p.values.put(SEGMENT, size(segment));
            }
            if (is1x() && !anyNetwork) {
                p.legacyNetwork = Math.max(0, (long) buffers * segment);
            }
        } else if (chance(0.05)) {
            p.values.put(SEGMENT, chance(0.5) ? size(pick(4 * KB, 64 * KB)) : badSegment()); // unread
        }

        // Which of task heap, managed memory, Total Flink and Total Process are set.
        switch (weighted(30, 12, 10, 8, 6, 5, 5, 4, 5, 3, 3, is1x() ? 9 : 4)) {
            case 0: // Total Process alone, the distribution's default
                p.values.put(PROCESS, size(pickProcess(p)));
                break;
            case 1:
                p.values.put(FLINK, size(pickFlink(p)));
                break;
            case 2: { // fine-grained: network derived with the inverse fraction (or legacy)
                putManaged(p, pickManaged());
                p.values.put(TASK_HEAP, size(pickTaskHeap()));
                break;
            }
            case 3: { // fine-grained and Total Flink: network is what is left
                long taskHeap = pickTaskHeap();
                putManaged(p, pickManaged());
                p.values.put(TASK_HEAP, size(taskHeap));
                long excluding = sum(p.fwHeap, p.fwOff, taskHeap, p.taskOff, p.managed);
                p.values.put(FLINK, size(sum(excluding, networkTarget(p, -1))));
                break;
            }
            case 4: { // task heap and Total Flink: managed derived, network left over
                long flink = pickFlink(p);
                p.values.put(FLINK, size(flink));
                p.values.put(TASK_HEAP, size(taskHeapLeaving(p, flink)));
                break;
            }
            case 5: { // task heap and Total Process
                long flink = pickFlink(p);
                p.values.put(TASK_HEAP, size(taskHeapLeaving(p, flink)));
                p.values.put(PROCESS, size(processFor(p, flink)));
                break;
            }
            case 6: { // Total Flink and Total Process: the overhead is what is left
                long flink = pickFlink(p);
                p.values.put(FLINK, size(flink));
                p.values.put(PROCESS, size(processAround(p, flink)));
                break;
            }
            case 7: { // fine-grained and Total Process
                long taskHeap = pickTaskHeap();
                putManaged(p, pickManaged());
                p.values.put(TASK_HEAP, size(taskHeap));
                long excluding = sum(p.fwHeap, p.fwOff, taskHeap, p.taskOff, p.managed);
                p.values.put(PROCESS, size(processAround(p, sum(excluding, inverseNetwork(p, excluding)))));
                break;
            }
            case 8: { // managed memory with Total Flink or Total Process: task heap derived
                putManaged(p, pickManaged());
                long flink = pickFlink(p);
                if (chance(0.5)) {
                    p.values.put(FLINK, size(flink));
                } else {
                    p.values.put(PROCESS, size(processFor(p, flink)));
                }
                break;
            }
            case 9: { // all four
                long taskHeap = pickTaskHeap();
                putManaged(p, pickManaged());
                p.values.put(TASK_HEAP, size(taskHeap));
                long flink = sum(sum(p.fwHeap, p.fwOff, taskHeap, p.taskOff, p.managed), networkTarget(p, -1));
                p.values.put(FLINK, size(flink));
                p.values.put(PROCESS, size(processAround(p, flink)));
                break;
            }
            case 10: // half of the fine-grained pair: not enough
                if (chance(0.5)) {
                    p.values.put(TASK_HEAP, size(pickTaskHeap()));
                } else {
                    putManaged(p, pickManaged());
                }
                break;
            default:
                break; // none: the legacy heap, or the "configure one of three" error
        }
        boolean noneOfThree = !p.values.containsKey(FLINK) && !p.values.containsKey(PROCESS)
            && !(p.values.containsKey(TASK_HEAP) && p.managed >= 0);

        // CPU cores, slots, external resources.
        if (chance(0.35)) {
            p.values.put(CPU, cpu(true));
        }
        if (chance(0.35)) {
            p.values.put(SLOTS, slots(true));
        }
        if (chance(0.25)) {
            resources(p);
        }

        // Legacy heap: 1.x reads it when the target option is not set; 2.x must ignore it.
        double legacy = is1x() ? (noneOfThree ? 0.8 : 0.2) : 0.1;
        if (chance(legacy)) {
            legacyHeap(c, p.values, LEGACY_HEAP, LEGACY_MB);
        }
        oneBadValue(p.values, this::badValue);

        place(c, p);
        return c;
    }

    // ---------------------------------------------------------------------------------------------
    // Values with meaning

    /** A new key or its deprecated key (or both, the new one read first). */
    private void putMaybeDeprecated(Plan p, String key, String deprecated, Val v) {
        switch (weighted(14, 5, 1)) {
            case 0:
                p.values.put(key, v);
                break;
            case 1:
                p.values.put(deprecated, v);
                break;
            default:
                p.values.put(deprecated, chance(0.5) ? badValue(deprecated) : size(mib(between(1, 2048))));
                p.values.put(key, v);
                break;
        }
    }

    private void putManaged(Plan p, long managed) {
        p.managed = managed;
        putMaybeDeprecated(p, MANAGED, LEGACY_MANAGED, size(managed));
    }

    private static float floatOf(Val v, float fallback) {
        try {
            return Float.parseFloat(v.text);
        } catch (NumberFormatException e) {
            return fallback;
        }
    }

    private static boolean validFraction(float f) {
        return f >= 0 && f < 1;
    }

    /** a + b + ..., saturated at Long.MAX_VALUE (the aim only; Flink itself reports overflow). */
    private static long sum(long... parts) {
        long t = 0;
        for (long x : parts) {
            t = t > Long.MAX_VALUE - x ? Long.MAX_VALUE : t + x;
        }
        return t;
    }

    /** MemorySize.multiply as Flink computes it, saturated. */
    private static long mul(long bytes, double f) {
        if (f < 0 || Double.isNaN(f)) {
            return 0;
        }
        BigDecimal product = BigDecimal.valueOf(bytes).multiply(BigDecimal.valueOf(f));
        return product.compareTo(BigDecimal.valueOf(Long.MAX_VALUE)) > 0 ? Long.MAX_VALUE : product.longValue();
    }

    private static long clamp(long v, long lo, long hi) {
        return v > hi ? hi : Math.max(v, lo);
    }

    /** The network memory Flink derives from a Total Flink Memory (fraction, or legacy). */
    private long network(Plan p, long flink) {
        if (p.legacyNetwork >= 0) {
            return p.legacyNetwork;
        }
        return clamp(mul(flink, validFraction(p.nfrac) ? p.nfrac : 0.1f), p.nmin, p.nmax);
    }

    private long managed(Plan p, long flink) {
        return p.managed >= 0 ? p.managed : mul(flink, validFraction(p.mfrac) ? p.mfrac : 0.4f);
    }

    /** The network memory of the fine-grained branch without Total Flink: the inverse fraction. */
    private long inverseNetwork(Plan p, long excluding) {
        if (p.legacyNetwork >= 0) {
            return p.legacyNetwork;
        }
        double f = validFraction(p.nfrac) ? p.nfrac : 0.1f;
        return clamp(mul(excluding, f / (1 - f)), p.nmin, p.nmax);
    }

    /** The task heap Flink derives from a Total Flink Memory (negative: the sum exceeds it). */
    private long derivedTaskHeap(Plan p, long flink) {
        long rest = sum(p.fwHeap, p.fwOff, p.taskOff, managed(p, flink), network(p, flink));
        return rest == Long.MAX_VALUE ? Long.MIN_VALUE : flink - rest;
    }

    /** The smallest Total Flink whose derived task heap is not negative (or -1 if not found). */
    private long flinkForZeroTaskHeap(Plan p) {
        long lo = 0, hi = Long.MAX_VALUE / 2;
        if (derivedTaskHeap(p, hi) < 0) {
            return -1;
        }
        while (lo < hi) {
            long mid = lo + (hi - lo) / 2;
            if (derivedTaskHeap(p, mid) >= 0) {
                hi = mid;
            } else {
                lo = mid + 1;
            }
        }
        return lo;
    }

    /** A network size to aim a left-over network memory at: a bound, just past it, the
     * fraction's own value, the legacy size, or anything in the range. */
    private long networkTarget(Plan p, long flink) {
        long hi = p.nmax == Long.MAX_VALUE ? sum(p.nmin, 4 * GB) : p.nmax;
        if (p.legacyNetwork >= 0 && chance(0.7)) {
            return Math.max(0, p.legacyNetwork + pick(0L, 0L, 0L, 1L, -1L));
        }
        switch (weighted(4, 3, 2, 2, 2, 4)) {
            case 0: return p.nmin;
            case 1: return hi;
            case 2: return Math.max(0, p.nmin - 1);
            case 3: return sum(hi, 1);
            case 4: return flink > 0 ? mul(flink, validFraction(p.nfrac) ? p.nfrac : 0.1f) : p.nmin;
            default: return p.nmin + longBelow(Math.max(1, hi - p.nmin));
        }
    }

    /** A task heap that leaves Total Flink a network memory at an edge (managed derived). */
    private long taskHeapLeaving(Plan p, long flink) {
        long th = flink - sum(p.fwHeap, p.fwOff, p.taskOff, managed(p, flink), networkTarget(p, flink));
        return th >= 0 ? th : pickTaskHeap();
    }

    private long pickComponent() {
        switch (weighted(4, 2, 3, 2, 1)) {
            case 0: return mib(pick(128L, 64L, 256L, 0L, 1024L, 32L, 96L));
            case 1: return pick(0L, 1L, KB, mib(1));
            case 2: return mib(between(0, 2048));
            case 3: return ragged(0, 2 * GB);
            default: return pick(mib(128) - 1, mib(128) + 1, 4 * GB, TB, Long.MAX_VALUE / 2);
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

    private long pickNetworkBound(boolean isMin) {
        switch (weighted(5, 2, 3, 2)) {
            case 0: return mib(isMin ? pick(64L, 32L, 128L, 0L, 256L, 1024L, 100L)
                : pick(1024L, 256L, 512L, 2048L, 64L, 128L, 8192L));
            case 1: return isMin ? pick(0L, 1L, KB, 32 * KB) : pick(Long.MAX_VALUE, 8388607 * TB, 0L, 16 * GB);
            case 2: return mib(between(0, isMin ? 1024 : 4096));
            default: return ragged(0, isMin ? GB : 4 * GB);
        }
    }

    private int pickBuffers() {
        switch (weighted(5, 3, 1)) {
            case 0: return pick(2048, 1024, 4096, 8192, 100, 16384, 4000);
            case 1: return between(1, 100000);
            default: return pick(0, 1, Integer.MAX_VALUE, 65536 * 4, 262144);
        }
    }

    private long pickTaskHeap() {
        switch (weighted(5, 4, 3, 1)) {
            case 0: return mib(pick(100L, 200L, 256L, 384L, 512L, 1024L, 2048L, 0L));
            case 1: return mib(between(0, 8192));
            case 2: return ragged(0, 6 * GB);
            default: return pick(0L, 1L, TB, Long.MAX_VALUE / 4, Long.MAX_VALUE);
        }
    }

    private long pickManaged() {
        switch (weighted(5, 4, 3, 1)) {
            case 0: return mib(pick(0L, 128L, 200L, 512L, 1024L, 2048L, 307L));
            case 1: return mib(between(0, 8192));
            case 2: return ragged(0, 6 * GB);
            default: return pick(0L, 1L, TB, Long.MAX_VALUE / 4, Long.MAX_VALUE);
        }
    }

    /** Total Flink Memory, often where the derived task heap is 0 or the network fraction meets
     * its bounds. */
    private long pickFlink(Plan p) {
        double nf = validFraction(p.nfrac) ? p.nfrac : 0.1f;
        long d = between(-2, 2);
        switch (weighted(5, 4, 3, 4, 3, 1, 1)) {
            case 0: return mib(pick(1280L, 1024L, 512L, 2048L, 4096L, 1536L, 768L, 900L, 10240L));
            case 1: return mib(between(0, 16384));
            case 2: return ragged(0, 12 * GB);
            case 3: { // derived task heap 0, -1, +1, ...
                long f = flinkForZeroTaskHeap(p);
                return f < 0 ? mib(between(256, 4096)) : Math.max(0, f + d);
            }
            case 4: { // fraction × Total Flink at the network min or max
                long bound = chance(0.5) || p.nmax == Long.MAX_VALUE ? p.nmin : p.nmax;
                return nf > 0 ? Math.max(0, (long) (bound / nf) + d) : mib(between(256, 4096));
            }
            case 5: return Math.max(0, sum(p.fwHeap, p.fwOff, p.taskOff) + d);
            default: return pick(0L, TB, Long.MAX_VALUE, Long.MAX_VALUE - GB);
        }
    }

    /** Total Process Memory, often near an edge of the process-only branch. */
    private long pickProcess(Plan p) {
        double of = validFraction(p.ofrac) ? p.ofrac : 0.1f;
        long d = between(-3, 3);
        switch (weighted(6, 5, 4, 3, 4, 2, 2, 1)) {
            case 0: return mib(pick(1728L, 1024L, 2048L, 4096L, 8192L, 16384L, 1568L, 3072L, 512L));
            case 1: return mib(between(256, 32768));
            case 2: return ragged(300 * MB, 32 * GB);
            case 3: // raw overhead = min or max
                return of > 0 ? Math.max(0, (long) ((chance(0.5) ? p.omin : p.omax) / of) + d) : mib(between(300, 4096));
            case 4: { // the Total Flink where the derived task heap is 0
                long f = flinkForZeroTaskHeap(p);
                return f < 0 ? mib(between(300, 4096)) : Math.max(0, processFor(p, f) + d);
            }
            case 5: return Math.max(0, p.meta + p.omin + d); // metaspace + overhead = process
            case 6: return pick(0L, 1L, mib(100), mib(448), mib(576), GB - 1);
            default: return pick(TB, 1000 * GB, 8388607 * TB, Long.MAX_VALUE, Long.MAX_VALUE / 2);
        }
    }

    /** The Total Process Memory whose derived Total Flink Memory is `flink` (overhead by the
     * fraction of the process, capped to its range). */
    private long processFor(Plan p, long flink) {
        double of = validFraction(p.ofrac) ? p.ofrac : 0.1f;
        long base = sum(flink, p.meta);
        long lo = Math.min(p.omin, p.omax), hi = Math.max(p.omin, p.omax);
        long atMin = sum(base, lo);
        if (mul(atMin, of) <= lo) {
            return atMin;
        }
        long atMax = sum(base, hi);
        if (mul(atMax, of) >= hi) {
            return atMax;
        }
        return of < 1 ? (long) Math.min(Long.MAX_VALUE, base / (1 - of)) : atMax;
    }

    /** Total Process around Total Flink + metaspace + an overhead at or near its range. */
    private long processAround(Plan p, long totalFlink) {
        long base = sum(totalFlink, p.meta);
        long lo = Math.min(p.omin, p.omax), hi = Math.max(p.omin, p.omax);
        long overhead;
        switch (weighted(4, 2, 2, 2, 1, 1, 2)) {
            case 0: overhead = lo + longBelow(hi - lo + 1); break;
            case 1: overhead = lo; break;
            case 2: overhead = hi; break;
            case 3: overhead = pick(lo - 1, hi + 1); break;
            case 4: overhead = -between(1, 100) * MB; break; // less than Total Flink + metaspace
            case 5: overhead = mib(between(0, 2048)); break;
            default: return processFor(p, totalFlink);
        }
        return Math.max(0, overhead < 0 ? base + overhead : sum(base, overhead));
    }

    // ---------------------------------------------------------------------------------------------
    // Spellings of the TaskManager's own options

    /** An int as text, in standard YAML sometimes a YAML int. */
    private Val integer(long n) {
        return new Val(Long.toString(n), hasStandardYaml() && chance(0.3) ? Form.RAW : Form.STRING);
    }

    private Val cpu(boolean valid) {
        if (!valid) {
            String text = pick("0", "-1", "NaN", "Infinity", "-Infinity", "x", "", "1e400", "1,5", "two", "0.0", "-0",
                "1 core", "1.5.1");
            Form form = hasStandardYaml() && chance(0.3) && isSafeRaw(text) ? Form.RAW : Form.STRING;
            if (hasStandardYaml() && chance(0.15)) {
                return new Val(pick(".nan", ".inf", "-.inf", "0", "-1", "~", "[2]"), Form.RAW);
            }
            return new Val(text, form);
        }
        switch (weighted(6, 4, 2)) {
            case 0: return new Val(pick("1", "2", "4", "0.5", "1.5", "8", "1.0", "3", "16", "0.25"), Form.STRING);
            case 1:
                return new Val(pick("0.123456789", "1e-9", "2.00000001", "0.000000015", "1E2", " 2 ", "2d", "2F", "0x1p1",
                    "100000000000", "1.7976931348623157E308", "4.9E-324", "0.1", "1.23456789012", "123456789.123456789",
                    "+3", "00.5", "0.99999999999", "1.000000005", "1e23", "8.41e21", "4611686018427387904", "6.9E-323"),
                    Form.STRING);
            default:
                if (hasStandardYaml()) {
                    return new Val(pick("2", "1.5", "1e3", "0x10", "0.333333333333", "12", "0o17", "4.0"), Form.RAW);
                }
                return new Val(Integer.toString(between(1, 64)), Form.STRING);
        }
    }

    private Val slots(boolean valid) {
        if (!valid) {
            return new Val(pick("0", "-1", "x", "2147483648", "1.5", "", "1e3", "0x10", "two", "-2147483649"),
                Form.STRING);
        }
        if (chance(0.2)) {
            return new Val(pick(" 3 ", "+4", "010", "2147483647", "0", "-1"), Form.STRING);
        }
        return integer(pick(1, 2, 4, 8, 16, 40, 3, 6));
    }

    private Val badSegment() {
        return new Val(pick("1k", "5000b", "4g", "2g", "lots", "0", "-1", "3g", "2047", "4097", "1.5k", "3m"), Form.STRING);
    }

    private Val amount(boolean valid) {
        if (!valid) {
            return new Val(pick("two", "1.5", "", "1e3", "9223372036854775808", "0x2", "1 gpu"), Form.STRING);
        }
        switch (weighted(8, 3, 2)) {
            case 0: return integer(pick(1, 2, 4, 8, 3));
            case 1: return new Val(pick("0", "-1", " 3 ", "+2", "007"), Form.STRING);
            default:
                return new Val(pick("9007199254740993", "9223372036854775807", "9223372036854775806",
                    "123456789012345678", "4611686018427387903", "-9223372036854775808", "282879384806159008"),
                    Form.STRING);
        }
    }

    /** The external-resources list and amounts: names, list spellings, amounts present or not. */
    private void resources(Plan p) {
        List<String> names = new ArrayList<>();
        int n = weighted(0, 6, 3, 2, 1);
        for (int i = 0; i < n; i++) {
            names.add(RESOURCE_NAMES[r.nextInt(RESOURCE_NAMES.length)]);
        }
        Val list;
        boolean block = p.yaml && p.withFile && !p.onlyDynamic;
        switch (weighted(10, 3, 2, 2, 2, block ? 2 : 0, 1)) {
            case 0: list = new Val(String.join(";", names), Form.STRING); break;
            case 1: list = new Val(String.join(pick("; ", " ;", " ; "), names) + pick("", ";", " "), Form.STRING); break;
            case 2: { // quoted items, a ';' inside one
                StringBuilder b = new StringBuilder();
                for (int i = 0; i < names.size(); i++) {
                    String q = pick("'", "\"", "");
                    b.append(i == 0 ? "" : ";").append(q).append(names.get(i)).append(q);
                }
                if (chance(0.3)) {
                    b.append(";'g;p'");
                    names.add("g;p");
                }
                list = new Val(b.toString(), Form.STRING);
                break;
            }
            case 3: list = new Val(pick("none", "", ";", "gpu;;fpga", "gpu;gpu", "None", " none"), Form.STRING); break;
            case 4: { // a YAML flow sequence (a list in standard YAML, text elsewhere)
                StringBuilder b = new StringBuilder("[");
                for (int i = 0; i < names.size(); i++) {
                    b.append(i == 0 ? "" : ", ").append(YamlWriter.plainSafe(names.get(i)) ? names.get(i)
                        : YamlWriter.singleQuoted(names.get(i)));
                }
                list = new Val(b.append(']').toString(), hasStandardYaml() && chance(0.7) ? Form.RAW : Form.STRING);
                break;
            }
            case 5: { // a YAML block sequence under the key (config.yaml only)
                StringBuilder b = new StringBuilder();
                for (String name : names) {
                    b.append("\n- ").append(YamlWriter.plainSafe(name) ? name : YamlWriter.singleQuoted(name));
                }
                list = new Val(b.length() == 0 ? "[]" : b.toString(), Form.RAW);
                break;
            }
            default: list = new Val(pick("[]", "~", "[[gpu]]", "{gpu: 1}", "[gpu, 1, true]", "[gpu, [fpga]]",
                "[gpu, {a: 1}]", "[gpu, [fpga, 'q;r']]"), hasStandardYaml() ? Form.RAW : Form.STRING); break;
        }
        p.values.put(RESOURCES, list);
        for (String name : names) {
            if (chance(0.85)) {
                p.values.put("external-resource." + name + ".amount", amount(chance(0.95)));
            }
        }
        if (chance(0.15)) {
            p.values.put("external-resource." + pick(RESOURCE_NAMES) + ".amount", amount(true));
        }
    }

    private Val badValue(String key) {
        switch (key) {
            case OFRACTION:
            case NET_FRACTION:
            case LEGACY_NET_FRACTION:
            case MANAGED_FRACTION: {
                String text = pick("1", "1.0", "-0.1", "NaN", "Infinity", "-Infinity", "1.5", "abc", "", "0,1", "1/10",
                    "10%", "0.1.1", "-0", "-0.0", "0.99999999", "3.4028236e38", "1e40", "0x1p0", "nan", ".nan");
                Form form = Form.STRING;
                if (hasStandardYaml() && chance(0.4)) {
                    form = isSafeRaw(text) ? Form.RAW : Form.SINGLE_QUOTED;
                }
                return new Val(text, form);
            }
            case CPU:
                return cpu(false);
            case SLOTS:
                return slots(false);
            case BUFFERS:
                return new Val(pick("-1", "x", "2147483648", "1.5", "", "1e3", "0x800", "-2048"), Form.STRING);
            case SEGMENT:
                return badSegment();
            case LEGACY_MB:
                return new Val(pick("-1", "1024m", "2147483648", "1e3", "0x400", "", "abc", "1.5", "-2147483648"),
                    Form.STRING);
            case RESOURCES:
                return new Val(pick("'gpu", "\"gpu", "'a'b", "gpu;'x'y", "\"a\"\"", "'';x", "[gpu"), Form.STRING);
            default:
                if (key.startsWith("external-resource.")) {
                    return amount(false);
                }
                return badSize();
        }
    }

    // ---------------------------------------------------------------------------------------------
    // Placement: file, -D, both

    private static final String[][] NOISE = {
        {"jobmanager.rpc.address", "localhost"}, {"jobmanager.memory.process.size", "1600m"},
        {"taskmanager.host", "tm-0"}, {"parallelism.default", "1"}, {"TaskManager.Memory.Process.Size", "64m"},
        {"taskmanager.memory.process-size", "64m"}, {"TASKMANAGER.CPU.CORES", "3"},
        {"taskmanager.memory.managed.consumer-weights", "OPERATOR:70,STATEFUL:70,PYTHON:30"},
        {"taskmanager.memory.framework.off-heap.batch-shuffle.size", "64m"},
        {"taskmanager.network.memory.buffers-per-channel", "2"}, {"taskmanager.memory.jvm-overhead.fractions", "x"},
        {"jobmanager.memory.jvm-overhead.fraction", "2"}, {"env.java.opts.taskmanager", "-XX:+UseG1GC"},
        {"external-resource.gpu.driver-factory.class", "org.apache.flink.externalresource.gpu.GPUDriverFactory"},
        {"external-resource.gpu.param.discovery-script.path", "/opt/flink/plugins/gpu-discovery.sh"},
        {"taskmanager.memory.network.max-", "1"}, {"taskmanager.numberofTaskSlots", "0"},
        {"kubernetes.taskmanager.cpu", "2.0"}, {"taskmanager.memory.segment_size", "1"},
    };

    /** A shadow for a key set in both places: the file's value, which -D overrides. */
    private Val shadow(String key) {
        switch (key) {
            case OFRACTION:
            case NET_FRACTION:
            case LEGACY_NET_FRACTION:
            case MANAGED_FRACTION:
                return new Val(pick("0.5", "abc", "2"), Form.STRING);
            case CPU:
                return new Val(pick("abc", "3", "0"), Form.STRING);
            case SLOTS:
            case BUFFERS:
                return new Val(pick("x", "7", "-1"), Form.STRING);
            case RESOURCES:
                return new Val(pick("tpu", "'gpu", "none"), Form.STRING);
            default:
                if (key.startsWith("external-resource.")) {
                    return new Val(pick("x", "5"), Form.STRING);
                }
                return chance(0.5) ? badValue(key) : size(mib(between(1, 4096)));
        }
    }

    private void place(Case c, Plan p) {
        List<Object[]> fileEntries = new ArrayList<>(); // {key, Val}
        for (Map.Entry<String, Val> e : p.values.entrySet()) {
            String key = e.getKey();
            Val v = e.getValue();
            // A block sequence only exists in a YAML file.
            int where = v.text.startsWith("\n") ? 0 : p.onlyDynamic ? 1 : weighted(70, 18, 12); // file, -D, both
            if (where == 0) {
                fileEntries.add(new Object[] {key, v});
            } else if (where == 1) {
                c.dynamic.add(new String[] {key, v.text});
            } else {
                fileEntries.add(new Object[] {key, shadow(key)});
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
            if (chance(0.85) && !p.onlyDynamic) {
                fileEntries.add(new Object[] {kv[0], new Val(kv[1], Form.STRING)});
            } else {
                c.dynamic.add(r.nextInt(c.dynamic.size() + 1), kv.clone());
            }
        }
        Collections.shuffle(fileEntries, r);

        if (!p.withFile) {
            c.fileName = null;
            return;
        }
        c.fileName = p.yaml ? "config.yaml" : "flink-conf.yaml";
        if (fileEntries.isEmpty() && chance(0.5)) {
            c.fileText = pick("", "\n", "# empty\n");
            return;
        }
        c.fileText = p.yaml ? new YamlWriter(r).write(fileEntries) : legacyFile(fileEntries);
        if (chance(0.03)) {
            c.fileText = c.fileText.replace("\n", "\r\n");
        }
    }
}
