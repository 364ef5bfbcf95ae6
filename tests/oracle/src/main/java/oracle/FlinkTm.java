package oracle;

import java.lang.reflect.Method;
import java.lang.reflect.Modifier;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * Flink's own TaskManager (TaskExecutor) memory code, reached by reflection like {@link Flink}
 * reaches the JobManager's, so that one compiled harness runs against every line's jars:
 *
 * <ul>
 *   <li>{@code BashJavaUtils.getTmResourceParams(Configuration)} (private, every line) is what
 *       the scripts' {@code GET_TM_RESOURCE_PARAMS} prints: two lines, the JVM flags and the
 *       dynamic configs. In 1.x it first maps the legacy heap options to Total Flink Memory.
 *   <li>{@code TaskExecutorProcessUtils.getConfigurationMapLegacyTaskManagerHeapSizeToConfigOption}
 *       exists in 1.x only; the active resource managers map to Total Process Memory with it.
 *   <li>{@code ProcessMemoryUtils.generateJvmParametersStr} and {@code TaskExecutorProcessUtils
 *       .generateDynamicConfigsStr} are found by name and by a parameter the spec can be passed
 *       to, whatever its declared type in a line.
 *   <li>{@code TaskExecutorProcessSpec} has the CPU cores in every line and the slots and the
 *       external resources from 1.13; its framework getters are package-private.
 * </ul>
 */
final class FlinkTm {
    /** The outcome of one resolution: either every size and string, or the exception thrown. */
    static final class Outcome {
        /** The twelve sizes, in the order of SIZE_NAMES. */
        final long[] sizes = new long[SIZE_NAMES.length];
        /** Double.toString of the CPU cores, as the dynamic configs print them. */
        String cpuCores;
        /** The slots (1.13+); null before. */
        Integer slots;
        /** {name, amount} of each external resource in the spec's map order (1.13+); null before. */
        List<Object> resources;
        String jvmArgs, dynamicConfigs;
        Throwable error;
    }

    /** The sizes of a result, as named in the JSON schema, and the spec getters that give them. */
    static final String[] SIZE_NAMES = {"framework_heap", "framework_off_heap", "task_heap", "task_off_heap",
        "network", "managed", "total_flink", "metaspace", "overhead", "total_process", "jvm_heap", "jvm_direct"};
    private static final String[] GETTERS = {"getFrameworkHeapSize", "getFrameworkOffHeapMemorySize",
        "getTaskHeapSize", "getTaskOffHeapSize", "getNetworkMemSize", "getManagedMemorySize",
        "getTotalFlinkMemorySize", "getJvmMetaspaceSize", "getJvmOverheadSize", "getTotalProcessMemorySize",
        "getJvmHeapMemorySize", "getJvmDirectMemorySize"};

    private final Flink flink;
    private final Method legacyMap; // null in 2.x
    private final Method specFromConfig;
    private final Method jvmParams;
    private final Method dynamicConfigs;
    private final Method bashTmParams;
    private final Object flinkOption, processOption;
    private final Method getBytes;
    private final Method[] sizeGetters = new Method[GETTERS.length];
    private final Method cpuCores, resourceValue;
    private final Method numSlots, extendedResources; // null before 1.13

    FlinkTm(Flink flink) throws ReflectiveOperationException {
        this.flink = flink;
        ClassLoader cl = FlinkTm.class.getClassLoader();
        Class<?> conf = Class.forName("org.apache.flink.configuration.Configuration", false, cl);
        Class<?> option = Class.forName("org.apache.flink.configuration.ConfigOption", false, cl);
        Class<?> tmOptions = Class.forName("org.apache.flink.configuration.TaskManagerOptions", true, cl);
        Class<?> utils = Class.forName("org.apache.flink.runtime.clusterframework.TaskExecutorProcessUtils", true, cl);
        Class<?> spec = Class.forName("org.apache.flink.runtime.clusterframework.TaskExecutorProcessSpec", false, cl);
        Class<?> processUtils = Class.forName("org.apache.flink.runtime.util.config.memory.ProcessMemoryUtils", true, cl);
        Class<?> bash = Class.forName("org.apache.flink.runtime.util.bash.BashJavaUtils", true, cl);
        Class<?> memSize = Class.forName("org.apache.flink.configuration.MemorySize", true, cl);
        Class<?> resource = Class.forName("org.apache.flink.api.common.resources.Resource", false, cl);

        legacyMap = findOrNull(utils, "getConfigurationMapLegacyTaskManagerHeapSizeToConfigOption", conf, option);
        specFromConfig = Flink.accessible(utils.getDeclaredMethod("processSpecFromConfig", conf));
        jvmParams = takingSpec(processUtils, "generateJvmParametersStr", spec);
        dynamicConfigs = takingSpec(utils, "generateDynamicConfigsStr", spec);
        bashTmParams = Flink.accessible(bash.getDeclaredMethod("getTmResourceParams", conf));
        flinkOption = tmOptions.getField("TOTAL_FLINK_MEMORY").get(null);
        processOption = tmOptions.getField("TOTAL_PROCESS_MEMORY").get(null);
        getBytes = memSize.getMethod("getBytes");
        for (int i = 0; i < GETTERS.length; i++) {
            sizeGetters[i] = getter(spec, GETTERS[i]);
        }
        cpuCores = getter(spec, "getCpuCores");
        resourceValue = resource.getMethod("getValue");
        boolean v13 = flink.major > 1 || flink.minor >= 13;
        numSlots = v13 ? getter(spec, "getNumSlots") : null;
        extendedResources = v13 ? getter(spec, "getExtendedResources") : null;
        if ((flink.major == 1) != (legacyMap != null)) {
            throw new IllegalStateException("legacy heap mapping presence does not match Flink " + flink.version);
        }
    }

    private static Method findOrNull(Class<?> c, String name, Class<?>... params) {
        try {
            return Flink.accessible(c.getDeclaredMethod(name, params));
        } catch (NoSuchMethodException e) {
            return null;
        }
    }

    /** The static method `name` of `c` with one parameter that a `spec` can be passed to. */
    private static Method takingSpec(Class<?> c, String name, Class<?> spec) throws NoSuchMethodException {
        Method found = null;
        for (Method m : c.getDeclaredMethods()) {
            if (m.getName().equals(name) && Modifier.isStatic(m.getModifiers()) && m.getParameterCount() == 1
                    && m.getParameterTypes()[0].isAssignableFrom(spec)) {
                if (found != null) {
                    throw new NoSuchMethodException("more than one " + c.getName() + "." + name + " takes " + spec);
                }
                found = m;
            }
        }
        if (found == null) {
            throw new NoSuchMethodException(c.getName() + "." + name + "(" + spec.getSimpleName() + ")");
        }
        return Flink.accessible(found);
    }

    /** A getter of the spec or of a class it extends, public or not. */
    private static Method getter(Class<?> c, String name) throws NoSuchMethodException {
        for (Class<?> k = c; k != null; k = k.getSuperclass()) {
            try {
                return Flink.accessible(k.getDeclaredMethod(name));
            } catch (NoSuchMethodException e) {
                // declared higher up
            }
        }
        throw new NoSuchMethodException(c.getName() + "." + name + "()");
    }

    boolean hasLegacy() {
        return legacyMap != null;
    }

    /**
     * Loads and resolves one case. target: "flink" (what BashJavaUtils GET_TM_RESOURCE_PARAMS
     * does: in 1.x the legacy heap options become Total Flink Memory first), "process" (the
     * legacy heap as Total Process Memory, as Flink's active resource managers read it; 1.x
     * only) or "none" (processSpecFromConfig alone; in 2.x that is the scripts' path, and it is
     * taken through BashJavaUtils). Every exception lands in the outcome; an Error (a missing
     * class, say, or a disagreement between BashJavaUtils and the spec) propagates.
     */
    Outcome run(String confDir, List<String[]> dynamic, String target) {
        boolean script = "flink".equals(target) || ("none".equals(target) && !hasLegacy());
        if (!script && !"none".equals(target) && !("process".equals(target) && hasLegacy())) {
            throw new AssertionError("legacy target " + target + " does not exist in Flink " + flink.version);
        }
        Outcome out = new Outcome();
        try {
            Object spec;
            if (script) {
                @SuppressWarnings("unchecked")
                List<String> lines = (List<String>) Flink.call(bashTmParams, null, flink.load(confDir, dynamic));
                if (lines.size() != 2) {
                    throw new AssertionError("BashJavaUtils gave " + lines.size() + " lines");
                }
                out.jvmArgs = lines.get(0);
                out.dynamicConfigs = lines.get(1);
                // The sizes: the same steps BashJavaUtils took, on a freshly loaded config.
                Object config = flink.load(confDir, dynamic);
                if (hasLegacy()) {
                    config = Flink.call(legacyMap, null, config, flinkOption);
                }
                spec = Flink.call(specFromConfig, null, config);
                checkSame("JVM flags", out.jvmArgs, (String) Flink.call(jvmParams, null, spec));
                checkSame("dynamic configs", out.dynamicConfigs, (String) Flink.call(dynamicConfigs, null, spec));
            } else {
                Object config = flink.load(confDir, dynamic);
                if ("process".equals(target)) {
                    config = Flink.call(legacyMap, null, config, processOption);
                }
                spec = Flink.call(specFromConfig, null, config);
                out.jvmArgs = (String) Flink.call(jvmParams, null, spec);
                out.dynamicConfigs = (String) Flink.call(dynamicConfigs, null, spec);
            }
            for (int i = 0; i < GETTERS.length; i++) {
                out.sizes[i] = (Long) getBytes.invoke(sizeGetters[i].invoke(spec));
            }
            // As generateDynamicConfigsStr prints them: the BigDecimal's double.
            out.cpuCores = String.valueOf(((Number) resourceValue.invoke(cpuCores.invoke(spec))).doubleValue());
            if (numSlots != null) {
                out.slots = (Integer) numSlots.invoke(spec);
                out.resources = new ArrayList<>();
                for (Map.Entry<?, ?> e : ((Map<?, ?>) extendedResources.invoke(spec)).entrySet()) {
                    long amount = ((Number) resourceValue.invoke(e.getValue())).longValue();
                    List<Object> pair = new ArrayList<>();
                    pair.add(e.getKey());
                    pair.add(amount);
                    out.resources.add(pair);
                }
            }
        } catch (Error e) {
            throw e;
        } catch (Throwable t) {
            out.error = t;
        }
        return out;
    }

    private static void checkSame(String what, String a, String b) {
        if (!a.equals(b)) {
            throw new AssertionError("BashJavaUtils printed " + what + " '" + a + "' but the spec gives '" + b + "'");
        }
    }
}
