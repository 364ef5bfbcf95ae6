package oracle;

import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Random;
import java.util.function.Function;

/**
 * What the generators of both roles share ({@link Gen} for JobManagers, {@link TmGen} for
 * TaskManagers): the seeded random choices and the spellings of sizes, fractions, booleans and
 * legacy heap values, valid and bad, and the legacy flink-conf.yaml writer. Moved out of Gen as
 * they were: a JobManager case draws exactly the numbers it drew before.
 */
abstract class Spelling {
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

    final int major, minor;
    Random r;

    Spelling(int major, int minor) {
        this.major = major;
        this.minor = minor;
    }

    boolean is1x() {
        return major == 1;
    }

    boolean hasStandardYaml() {
        return major >= 2 || minor >= 19;
    }

    // ---------------------------------------------------------------------------------------------
    // Random helpers

    static long mix(long seed, long id) {
        long z = seed * 0x9E3779B97F4A7C15L + id + 0x632BE59BD9B4E019L;
        z = (z ^ (z >>> 30)) * 0xBF58476D1CE4E5B9L;
        z = (z ^ (z >>> 27)) * 0x94D049BB133111EBL;
        return z ^ (z >>> 31);
    }

    boolean chance(double p) {
        return r.nextDouble() < p;
    }

    int between(int lo, int hi) {
        return lo + r.nextInt(hi - lo + 1);
    }

    long longBelow(long bound) {
        return bound <= 0 ? 0 : (r.nextLong() >>> 1) % bound;
    }

    @SafeVarargs
    final <T> T pick(T... xs) {
        return xs[r.nextInt(xs.length)];
    }

    /** Picks an index by weight. */
    int weighted(int... weights) {
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

    long mib(long n) {
        return n * MB;
    }

    /** A size with a random low part, so that it is not a round number of MiB. */
    long ragged(long lo, long hi) {
        return lo + longBelow(hi - lo + 1);
    }

    // ---------------------------------------------------------------------------------------------
    // Spellings

    String withCase(String unit) {
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
    String spell(long bytes) {
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
    Val size(long bytes) {
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

    /** A fraction, mostly valid: decimals, floats, hex floats and odd forms Java parses. */
    Val fraction() {
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
        return new Val(text, form);
    }

    Val bool(boolean valid) {
        String text = valid ? pick("true", "false", "true", "false", "TRUE", "False", "tRuE", "FALSE")
            : pick("yes", "no", "1", "0", "on", "t", "", "truee", " true", "true ", "'true'", "\"false\"");
        if (hasStandardYaml() && valid && chance(0.3)) {
            return new Val(text, pick(Form.RAW, Form.SINGLE_QUOTED, Form.DOUBLE_QUOTED));
        }
        return new Val(text, Form.STRING);
    }

    /** jobmanager.heap.size or FLINK_JM_HEAP: a plausible legacy heap, sometimes odd. */
    /**
     * The legacy heap settings of either role, one way picked (the FLINK_*_HEAP variable,
     * {@code legacyHeapKey} or {@code legacyMbKey}) and sometimes more of them together.
     */
    void legacyHeap(Case c, Map<String, Val> values, String legacyHeapKey, String legacyMbKey) {
        switch (weighted(4, 4, 3)) {
            case 0:
                c.envHeap = legacySize().text;
                break;
            case 1:
                values.put(legacyHeapKey, legacySize());
                break;
            default:
                values.put(legacyMbKey, heapMb());
                break;
        }
        if (chance(0.25)) {
            values.put(legacyMbKey, heapMb());
        }
        if (chance(0.15)) {
            values.put(legacyHeapKey, legacySize());
        }
        if (chance(0.1)) {
            c.envHeap = legacySize().text;
        }
    }

    /** In some cases (11%), one of the values replaced by a bad spelling of its key's kind. */
    void oneBadValue(Map<String, Val> values, Function<String, Val> badValue) {
        if (!values.isEmpty() && chance(0.11)) {
            List<String> keys = new ArrayList<>(values.keySet());
            String key = keys.get(r.nextInt(keys.size()));
            values.put(key, badValue.apply(key));
        }
    }

    Val legacySize() {
        switch (weighted(6, 2, 1, 1)) {
            case 0: return new Val(spell(mib(pick(1024L, 512L, 768L, 2048L, 1600L, 4096L, 10L, 256L))), Form.STRING);
            case 1: return new Val(spell(mib(between(16, 8192))), Form.STRING);
            case 2: return new Val(pick("1024", "1073741824", "0", "2g ", " 1g"), Form.STRING);
            default: return badSize();
        }
    }

    Val heapMb() {
        switch (weighted(6, 2, 2)) {
            case 0: return new Val(pick("1024", "512", "768", "2048", "1600", "4096", "10", "256"), Form.STRING);
            case 1: return new Val(Integer.toString(between(0, 8192)), hasStandardYaml() && chance(0.3) ? Form.RAW : Form.STRING);
            default:
                return new Val(pick("0", "-1", "-100", " 1024 ", "1024m", "2147483647", "2147483648", "1e3", "0x400",
                    "+512", "01024", "1024.0", "", "abc", "9999999999"), Form.STRING);
        }
    }

    Val badSize() {
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

    boolean isSafeRaw(String text) {
        return !text.isEmpty() && text.matches("[A-Za-z0-9.+_-]+") && !text.startsWith("-");
    }

    /** A flink-conf.yaml as people write them, including lines Flink's line parser skips. */
    String legacyFile(List<Object[]> entries) {
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
