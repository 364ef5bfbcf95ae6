package oracle;

import java.io.Writer;
import java.lang.reflect.Constructor;
import java.lang.reflect.Method;
import java.math.BigDecimal;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Paths;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Random;

/**
 * The container memory Flink's Kubernetes integration asks for a JobManager, from Flink's own
 * flink-kubernetes jar: KubernetesUtils.getResourceRequirements with the MiB figure
 * MemorySize.getMebiBytes gives (ClusterSpecification.getMasterMemoryMB), for seeded random
 * process sizes and kubernetes.jobmanager.memory.limit-factor values. Lines whose jars have no
 * limit factor (before 1.15) write nothing. Used only through reflection, like the rest.
 */
final class Kube {
    private Kube() {}

    /** Writes one JSON line per case; false when this line's jars have no such method. */
    static boolean check(String flink, long seed, int cases, String out) throws Exception {
        Class<?> utils;
        try {
            utils = Class.forName("org.apache.flink.kubernetes.utils.KubernetesUtils");
        } catch (ClassNotFoundException e) {
            return false;
        }
        Method get = null;
        for (Method m : utils.getMethods()) {
            Class<?>[] p = m.getParameterTypes();
            if (m.getName().equals("getResourceRequirements") && p.length == 7
                    && p[1] == int.class && p[2] == double.class && p[3] == double.class
                    && p[4] == double.class) {
                get = m;
            }
        }
        if (get == null) {
            return false;
        }
        Class<?> requirements = get.getParameterTypes()[0];
        Constructor<?> empty = requirements.getConstructor();
        Class<?> memorySize = Class.forName("org.apache.flink.configuration.MemorySize");
        Constructor<?> size = memorySize.getConstructor(long.class);
        Method mebi = memorySize.getMethod("getMebiBytes");
        Method limits = requirements.getMethod("getLimits");
        Method requests = requirements.getMethod("getRequests");
        Class<?> quantity = null;
        Random r = new Random(seed ^ 0x6b756265L);
        double[] usual = {1.0, 1.0000001, 1.1, 1.2, 1.25, 1.3, 4.0 / 3.0, 1.5, 1.75, 2.0, 2.5, 3.0, 10.0};
        long start = System.nanoTime();
        try (Writer w = Files.newBufferedWriter(Paths.get(out), StandardCharsets.UTF_8)) {
            for (int id = 0; id < cases; id++) {
                long total;
                switch (r.nextInt(4)) {
                    case 0: total = (long) (1 + r.nextInt(65536)) << 20; break; // whole MiB
                    case 1: total = (128L << 20) + (r.nextLong() & ((1L << 36) - 1)); break; // any byte
                    case 2: total = 1L << (20 + r.nextInt(30)); break; // powers of two
                    default: total = (long) ((1 + r.nextInt(64)) * 100) * 1000 * 1000; break; // decimal
                }
                double factor;
                switch (r.nextInt(3)) {
                    case 0: factor = usual[r.nextInt(usual.length)]; break;
                    case 1: factor = 1.0 + r.nextDouble() * 3.0; break;
                    default: factor = 1.0 + r.nextInt(1000) / 1000.0; break;
                }
                int mem = (int) mebi.invoke(size.newInstance(total));
                Object req = get.invoke(null, empty.newInstance(), mem, factor, 1.0, 1.0,
                                        Collections.emptyMap(), Collections.emptyMap());
                Object lim = ((Map<?, ?>) limits.invoke(req)).get("memory");
                Object rq = ((Map<?, ?>) requests.invoke(req)).get("memory");
                if (quantity == null) {
                    quantity = lim.getClass();
                }
                Method bytes = quantity.getMethod("getAmountInBytes", quantity);
                Map<String, Object> json = new LinkedHashMap<>();
                json.put("kind", "kubernetes-memory");
                json.put("flink", flink);
                json.put("seed", seed);
                json.put("id", id);
                json.put("total", total);
                json.put("factor", Double.toString(factor));
                json.put("factor_bits", Long.toString(Double.doubleToRawLongBits(factor)));
                json.put("request", ((BigDecimal) bytes.invoke(null, rq)).longValueExact());
                json.put("limit", ((BigDecimal) bytes.invoke(null, lim)).longValueExact());
                w.write(Json.write(json));
                w.write('\n');
            }
        }
        System.err.printf("oracle kubernetes memory: %d cases, %.1fs%n", cases,
            (System.nanoTime() - start) / 1e9);
        return true;
    }
}
