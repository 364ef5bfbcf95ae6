package oracle;

import java.lang.reflect.Field;
import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Method;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * Flink's own JobManager memory code, reached by reflection so that one compiled harness runs
 * against the jars of every Flink line (1.11 ... 2.x) whose APIs differ in small ways:
 *
 * <ul>
 *   <li>1.x has {@code JobManagerProcessUtils.processSpecFromConfigWithNewOptionToInterpretLegacyHeap}
 *       (the legacy heap step); 2.x has only {@code processSpecFromConfig}, public there and
 *       package-private in 1.x.
 *   <li>{@code generateDynamicConfigsStr} exists from 1.12; 1.11's BashJavaUtils prints one line.
 *   <li>{@code BashJavaUtils.getJmResourceParams(Configuration)} (package-private, every line) is
 *       exactly what the scripts' {@code GET_JM_RESOURCE_PARAMS} prints, so it is called as is.
 * </ul>
 *
 * <p>Configurations are loaded with {@code FlinkConfigLoader.loadConfiguration(String[])}, the
 * entry point BashJavaUtils uses, with the same {@code --configDir DIR -D k=v ...} arguments.
 */
final class Flink {
    /** The outcome of one resolution: either sizes and strings, or the exception thrown. */
    static final class Outcome {
        long totalProcess, totalFlink, heap, offHeap, metaspace, overhead;
        String jvmArgs, dynamicConfigs;
        Throwable error;
    }

    final String version;
    final int major, minor;
    private final Method loadConfiguration;
    private final Method withLegacy; // null in 2.x
    private final Method specFromConfig;
    private final Method jvmParams;
    private final Method dynamicConfigs; // null in 1.11
    private final Method bashJmParams;
    private final Object heapOption, processOption;
    private final Method getBytes;
    private final Method[] sizeGetters = new Method[6];

    Flink(String expectedVersion) throws ReflectiveOperationException {
        ClassLoader cl = Flink.class.getClassLoader();
        Class<?> conf = Class.forName("org.apache.flink.configuration.Configuration", false, cl);
        Class<?> option = Class.forName("org.apache.flink.configuration.ConfigOption", false, cl);
        Class<?> jmOptions = Class.forName("org.apache.flink.configuration.JobManagerOptions", true, cl);
        Class<?> utils = Class.forName("org.apache.flink.runtime.jobmanager.JobManagerProcessUtils", true, cl);
        Class<?> spec = Class.forName("org.apache.flink.runtime.jobmanager.JobManagerProcessSpec", false, cl);
        Class<?> bash = Class.forName("org.apache.flink.runtime.util.bash.BashJavaUtils", true, cl);
        Class<?> loader = Class.forName("org.apache.flink.runtime.util.bash.FlinkConfigLoader", true, cl);
        Class<?> memSize = Class.forName("org.apache.flink.configuration.MemorySize", true, cl);

        version = detectVersion(utils);
        if (expectedVersion != null && !expectedVersion.equals(version)) {
            throw new IllegalStateException("class path has Flink " + version + ", expected " + expectedVersion);
        }
        String[] parts = version.split("\\.");
        major = Integer.parseInt(parts[0]);
        minor = Integer.parseInt(parts[1]);

        loadConfiguration = loader.getMethod("loadConfiguration", String[].class);
        withLegacy = findOrNull(utils, "processSpecFromConfigWithNewOptionToInterpretLegacyHeap", conf, option);
        specFromConfig = accessible(utils.getDeclaredMethod("processSpecFromConfig", conf));
        jvmParams = utils.getMethod("generateJvmParametersStr", spec, conf);
        dynamicConfigs = findOrNull(utils, "generateDynamicConfigsStr", spec);
        bashJmParams = accessible(bash.getDeclaredMethod("getJmResourceParams", conf));
        heapOption = jmOptions.getField("JVM_HEAP_MEMORY").get(null);
        processOption = jmOptions.getField("TOTAL_PROCESS_MEMORY").get(null);
        getBytes = memSize.getMethod("getBytes");
        String[] names = {"getTotalProcessMemorySize", "getTotalFlinkMemorySize", "getJvmHeapMemorySize",
            "getJvmDirectMemorySize", "getJvmMetaspaceSize", "getJvmOverheadSize"};
        for (int i = 0; i < names.length; i++) {
            sizeGetters[i] = spec.getMethod(names[i]);
        }
        if ((major == 1) != (withLegacy != null)) {
            throw new IllegalStateException("legacy entry point presence does not match Flink " + version);
        }
    }

    /** The version of the flink-runtime jar that holds {@code utils}, from its file name. */
    private static String detectVersion(Class<?> utils) {
        String where = String.valueOf(utils.getProtectionDomain().getCodeSource().getLocation());
        java.util.regex.Matcher m = java.util.regex.Pattern
            .compile("flink-runtime(?:_2\\.1[12])?-([0-9]+\\.[0-9]+\\.[0-9]+)\\.jar").matcher(where);
        if (!m.find()) {
            throw new IllegalStateException("cannot tell the Flink version from " + where);
        }
        return m.group(1);
    }

    private static Method findOrNull(Class<?> c, String name, Class<?>... params) {
        try {
            return accessible(c.getDeclaredMethod(name, params));
        } catch (NoSuchMethodException e) {
            return null;
        }
    }

    static Method accessible(Method m) {
        m.setAccessible(true);
        return m;
    }

    boolean hasLegacy() {
        return withLegacy != null;
    }

    boolean hasDynamicConfigs() {
        return dynamicConfigs != null;
    }

    /** Loads a configuration exactly as BashJavaUtils does: FlinkConfigLoader with script args. */
    Object load(String confDir, List<String[]> dynamic) throws Throwable {
        List<String> args = new ArrayList<>();
        args.add("--configDir");
        args.add(confDir);
        for (String[] kv : dynamic) {
            args.add("-D");
            args.add(kv[0] + "=" + kv[1]);
        }
        return call(loadConfiguration, null, (Object) args.toArray(new String[0]));
    }

    /**
     * Loads and resolves one case. target: "heap" (what BashJavaUtils GET_JM_RESOURCE_PARAMS does;
     * in 2.x that is the same as "none"), "process" (the YARN/Kubernetes client's legacy step), or
     * "none" (the resolver without any legacy step). Every exception lands in the outcome; an
     * Error (a missing class, say) is not a Flink result and propagates.
     */
    Outcome run(String confDir, List<String[]> dynamic, String target) {
        Outcome out = new Outcome();
        try {
            Object spec;
            if ("heap".equals(target) || ("none".equals(target) && !hasLegacy())) {
                @SuppressWarnings("unchecked")
                List<String> lines = (List<String>) call(bashJmParams, null, load(confDir, dynamic));
                int want = hasDynamicConfigs() ? 2 : 1;
                if (lines.size() != want) {
                    throw new IllegalStateException("BashJavaUtils gave " + lines.size() + " lines");
                }
                out.jvmArgs = lines.get(0);
                out.dynamicConfigs = want == 2 ? lines.get(1) : null;
                // The sizes: the same entry point BashJavaUtils used, on a freshly loaded config.
                Object config = load(confDir, dynamic);
                spec = hasLegacy() ? call(withLegacy, null, config, heapOption) : call(specFromConfig, null, config);
                checkSame(out.jvmArgs, (String) call(jvmParams, null, spec, config));
            } else {
                Object config = load(confDir, dynamic);
                if ("process".equals(target)) {
                    spec = call(withLegacy, null, config, processOption);
                } else if ("none".equals(target)) {
                    spec = call(specFromConfig, null, config);
                } else {
                    throw new IllegalArgumentException("unknown legacy target " + target);
                }
                out.jvmArgs = (String) call(jvmParams, null, spec, config);
                out.dynamicConfigs = hasDynamicConfigs() ? (String) call(dynamicConfigs, null, spec) : null;
            }
            long[] v = new long[6];
            for (int i = 0; i < 6; i++) {
                v[i] = (Long) getBytes.invoke(sizeGetters[i].invoke(spec));
            }
            out.totalProcess = v[0];
            out.totalFlink = v[1];
            out.heap = v[2];
            out.offHeap = v[3];
            out.metaspace = v[4];
            out.overhead = v[5];
        } catch (Error e) {
            throw e;
        } catch (Throwable t) {
            out.error = t;
        }
        return out;
    }

    private static void checkSame(String a, String b) {
        if (!a.equals(b)) {
            throw new AssertionError("BashJavaUtils printed '" + a + "' but the spec gives '" + b + "'");
        }
    }

    /** Invokes m and rethrows what Flink threw, not the reflection wrapper around it. */
    static Object call(Method m, Object self, Object... args) throws Throwable {
        try {
            return m.invoke(self, args);
        } catch (InvocationTargetException e) {
            throw e.getCause();
        }
    }

    /**
     * Sets (value != null) or removes an environment variable of this JVM, as System.getenv sees
     * it. Flink reads FLINK_JM_HEAP with System.getenv; this edits the map behind it, which on
     * JDK 9+ needs --add-opens java.base/java.util=ALL-UNNAMED. Oracle.envSelfCheck compares the
     * result with a child JVM that gets the variable for real.
     */
    @SuppressWarnings("unchecked")
    static void setEnv(String name, String value) {
        try {
            Map<String, String> env = System.getenv();
            Field f = env.getClass().getDeclaredField("m");
            f.setAccessible(true);
            Map<String, String> inner = (Map<String, String>) f.get(env);
            if (value == null) {
                inner.remove(name);
            } else {
                inner.put(name, value);
            }
        } catch (ReflectiveOperationException | RuntimeException e) {
            throw new IllegalStateException("cannot edit the environment (run with "
                + "--add-opens java.base/java.util=ALL-UNNAMED)", e);
        }
        if (value == null ? System.getenv(name) != null : !value.equals(System.getenv(name))) {
            throw new IllegalStateException("environment edit of " + name + " did not take effect");
        }
    }
}
