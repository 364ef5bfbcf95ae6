package oracle;

import java.lang.reflect.Constructor;
import java.lang.reflect.Field;
import java.lang.reflect.Method;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * Replays the shared vectors (derived by a reimplementation, not by Flink) through the real jars
 * and prints every disagreement. Covers resolution cases, MemorySize parsing and formatting, and
 * config-file parsing; the Kubernetes sizing vector needs flink-kubernetes and is skipped.
 */
final class Vectors {
    private Vectors() {}

    private static int checked, differing, skipped;

    @SuppressWarnings("unchecked")
    static boolean check(Flink flink, String path, Path work) throws Exception {
        List<Object> vectors = (List<Object>) Json.parse(
            new String(Files.readAllBytes(Paths.get(path)), StandardCharsets.UTF_8));
        for (Object o : vectors) {
            Map<String, Object> v = (Map<String, Object>) o;
            String source = (String) v.get("source");
            try {
                if (v.containsKey("config") && v.containsKey("expect")) {
                    resolution(flink, v, work, source);
                } else if (v.containsKey("parse")) {
                    parse(v, source);
                } else if (v.containsKey("format_human_readable") || v.containsKey("format_to_string")) {
                    format(v, source);
                } else if (v.containsKey("file_lines")) {
                    configFile(flink, v, work, source);
                } else {
                    skipped++;
                }
            } catch (Error e) {
                throw e;
            } catch (Throwable t) {
                differ(source, "harness failure: " + t);
            }
        }
        System.err.printf("vectors %s: %d checked, %d differ, %d skipped%n", flink.version, checked, differing, skipped);
        return differing == 0;
    }

    private static void differ(String source, String what) {
        differing++;
        System.out.println("DIFF " + source + "\n     " + what.replace("\n", "\n     "));
    }

    private static void compare(String source, String field, Object expected, Object actual) {
        boolean same = expected == null ? actual == null : actual != null && String.valueOf(expected).equals(String.valueOf(actual));
        if (!same) {
            differ(source, field + ":\n  vector: " + Json.write(expected) + "\n  jar:    " + Json.write(actual));
        }
    }

    @SuppressWarnings("unchecked")
    private static void resolution(Flink flink, Map<String, Object> v, Path work, String source) throws Exception {
        String versions = String.valueOf(v.get("versions"));
        String legacy = (String) v.get("legacy_interpretation");
        if (!flink.hasLegacy() && (legacy != null || versions.startsWith("1.11-1.20"))) {
            skipped++;
            return;
        }
        Case c = new Case();
        for (Map.Entry<String, Object> e : ((Map<String, Object>) v.get("config")).entrySet()) {
            c.dynamic.add(new String[] {e.getKey(), String.valueOf(e.getValue())});
        }
        if (v.get("env") != null) {
            c.envHeap = (String) ((Map<String, Object>) v.get("env")).get("FLINK_JM_HEAP");
        }
        c.target = legacy == null ? "none" : legacy;
        Map<String, Object> got = Oracle.resolve(flink, null, c, work, false); // JobManager cases only
        Map<String, Object> expect = (Map<String, Object>) v.get("expect");
        checked++;
        int before = differing;
        if (expect.containsKey("error")) {
            compare(source, "error", expect.get("error"), got.get("error"));
            compare(source, "exception", expect.get("error_class"), got.get("exception"));
        } else {
            if (got.containsKey("error")) {
                differ(source, "jar threw " + got.get("exception") + ": " + got.get("error"));
                return;
            }
            for (String k : new String[] {"total_process", "total_flink", "heap", "off_heap", "metaspace", "overhead"}) {
                compare(source, k, expect.get(k), got.get(k));
            }
            if (v.containsKey("jvm_args")) {
                compare(source, "jvm_args", v.get("jvm_args"), got.get("jvm_args"));
            }
            if (v.containsKey("dynamic_configs") && flink.hasDynamicConfigs()) {
                compare(source, "dynamic_configs", v.get("dynamic_configs"), got.get("dynamic_configs"));
            }
        }
        if (differing != before) {
            System.out.println("     case: " + Json.write(c.toJson(0, 0, flink.version, "")));
        }
    }

    private static Class<?> memorySize() throws ClassNotFoundException {
        return Class.forName("org.apache.flink.configuration.MemorySize");
    }

    private static void parse(Map<String, Object> v, String source) throws Throwable {
        Method parse = memorySize().getMethod("parse", String.class);
        String text = (String) v.get("parse");
        checked++;
        Object bytes = null;
        Throwable error = null;
        try {
            bytes = memorySize().getMethod("getBytes").invoke(Flink.call(parse, null, text));
        } catch (Exception e) {
            error = e;
        }
        String what = source + " [" + Json.quote(text) + "]";
        if (Boolean.TRUE.equals(v.get("error"))) {
            if (error == null) {
                differ(what, "vector expects an error, jar parsed " + bytes);
            } else if (v.containsKey("error_message")) {
                compare(what, "error", v.get("error_message"), error.getMessage());
            }
        } else if (error != null) {
            differ(what, "jar threw " + error);
        } else {
            compare(what, "bytes", v.get("expect_bytes"), bytes);
        }
    }

    private static void format(Map<String, Object> v, String source) throws Throwable {
        Constructor<?> ctor = memorySize().getConstructor(long.class);
        checked++;
        if (v.containsKey("format_human_readable")) {
            long n = ((Number) v.get("format_human_readable")).longValue();
            Object ms = ctor.newInstance(n);
            compare(source + " [" + n + "]", "toHumanReadableString", v.get("expect"),
                memorySize().getMethod("toHumanReadableString").invoke(ms));
        } else {
            long n = ((Number) v.get("format_to_string")).longValue();
            compare(source + " [" + n + "]", "toString", v.get("expect"), ctor.newInstance(n).toString());
        }
    }

    @SuppressWarnings("unchecked")
    private static void configFile(Flink flink, Map<String, Object> v, Path work, String source) throws Throwable {
        String name = (String) v.get("config_file");
        boolean standard = "standard".equals(v.get("parser"));
        boolean lineHasStandard = flink.major >= 2 || flink.minor >= 19;
        if (standard != lineHasStandard && (standard || flink.major >= 2)) {
            skipped++;
            return;
        }
        Path dir = work.resolve("vec");
        Files.createDirectories(dir);
        Files.deleteIfExists(dir.resolve("flink-conf.yaml"));
        Files.deleteIfExists(dir.resolve("config.yaml"));
        Files.write(dir.resolve(name), (String.join("\n", (List<String>) (List<?>) v.get("file_lines")) + "\n")
            .getBytes(StandardCharsets.UTF_8));
        Class<?> gc = Class.forName("org.apache.flink.configuration.GlobalConfiguration");
        checked++;
        Object conf;
        try {
            conf = Flink.call(gc.getMethod("loadConfiguration", String.class), null, dir.toString());
        } catch (Exception e) {
            Map<String, Object> expect = (Map<String, Object>) v.get("expect");
            if (expect == null || !expect.containsKey("error")) {
                differ(source, "jar threw " + e);
            } else {
                compare(source, "error", expect.get("error"), e.getMessage());
                compare(source, "exception", expect.get("error_class"), e.getClass().getSimpleName());
            }
            return;
        }
        if (v.get("expect") instanceof Map && ((Map<String, Object>) v.get("expect")).containsKey("error")) {
            differ(source, "vector expects an error, jar loaded " + conf);
            return;
        }
        Field data = conf.getClass().getDeclaredField("confData");
        data.setAccessible(true);
        Map<String, Object> raw = (Map<String, Object>) data.get(conf);
        if (v.containsKey("expect_key_count")) {
            compare(source, "key count", v.get("expect_key_count"), (long) raw.size());
        }
        Map<String, Object> expected = (Map<String, Object>) (v.containsKey("expect_config")
            ? v.get("expect_config") : v.get("expect_config_typed"));
        if (expected != null) {
            List<String> keys = new ArrayList<>(expected.keySet());
            for (String k : keys) {
                Object got = raw.get(k);
                compare(source, "value of " + k, expected.get(k), got);
                if (v.containsKey("expect_config_typed") && got != null) {
                    Object want = expected.get(k);
                    boolean typeOk = want instanceof String ? got instanceof String
                        : want instanceof Boolean ? got instanceof Boolean : got instanceof Number;
                    if (!typeOk) {
                        differ(source, "type of " + k + ": vector " + want.getClass().getSimpleName() + ", jar "
                            + got.getClass().getSimpleName());
                    }
                }
            }
            if (!v.containsKey("expect_key_count") && raw.size() != expected.size()) {
                differ(source, "jar has keys " + raw.keySet() + ", vector " + expected.keySet());
            }
        }
    }
}
