package oracle;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/** One oracle case: what a JobManager or a TaskManager would see, before it is resolved. */
final class Case {
    static final String JOBMANAGER = "jobmanager", TASKMANAGER = "taskmanager";

    /** JOBMANAGER or TASKMANAGER. A JobManager case's JSON has no "role" (the schema before
     * TaskManagers), so its lines stay as they were. */
    String role = JOBMANAGER;
    /** "flink-conf.yaml" or "config.yaml"; null: no file content at all (see fileNameFor). */
    String fileName;
    String fileText;
    /** The other file in the same conf dir (SecondFile), or null: only this case's own file. */
    String secondName, secondText;
    /** -D properties in command-line order, each {key, value}. */
    final List<String[]> dynamic = new ArrayList<>();
    /** The role's legacy heap variable (envName()) as the process sees it; null: not set. */
    String envHeap;
    /** JobManager: "heap", "process" or "none"; TaskManager: "flink" (the scripts' reading of the
     * legacy heap), "process" or "none". */
    String target;
    /** Where a curated case comes from (a data file and index); not part of the input. */
    String source;

    boolean isTaskManager() {
        return TASKMANAGER.equals(role);
    }

    /** The environment variable Flink reads the role's legacy heap from. */
    String envName() {
        return isTaskManager() ? "FLINK_TM_HEAP" : "FLINK_JM_HEAP";
    }

    /**
     * The file written into the conf dir for a case without a file (-D properties only). Flink
     * fails with a message naming the local path when its config file is missing, so such a case
     * runs with an empty file: flink-conf.yaml in 1.x, config.yaml in 2.x. (In 1.19/1.20 the
     * name picks the parser; -D values read the same either way, and the generator names a file
     * for those lines anyway.)
     */
    static String fileNameFor(int major, int minor) {
        return major >= 2 ? "config.yaml" : "flink-conf.yaml";
    }

    Map<String, Object> toJson(long seed, int id, String flink, String line) {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("seed", seed);
        m.put("id", (long) id);
        m.put("flink", flink);
        m.put("line", line);
        if (isTaskManager()) {
            m.put("role", role);
        }
        if (source != null) {
            m.put("source", source);
        }
        if (fileName == null) {
            m.put("file", null);
        } else {
            Map<String, Object> f = new LinkedHashMap<>();
            f.put("name", fileName);
            f.put("text", fileText);
            m.put("file", f);
        }
        if (secondName != null) {
            Map<String, Object> f = new LinkedHashMap<>();
            f.put("name", secondName);
            f.put("text", secondText);
            m.put("second_file", f);
        }
        List<Object> d = new ArrayList<>();
        for (String[] kv : dynamic) {
            d.add(kv);
        }
        m.put("dynamic", d);
        Map<String, Object> env = new LinkedHashMap<>();
        if (envHeap != null) {
            env.put(envName(), envHeap);
        }
        m.put("env", env);
        m.put("legacy_target", target);
        return m;
    }

    @SuppressWarnings("unchecked")
    static Case fromJson(Map<String, Object> m) {
        Case c = new Case();
        if (m.get("role") != null) {
            c.role = (String) m.get("role");
            if (!JOBMANAGER.equals(c.role) && !TASKMANAGER.equals(c.role)) {
                throw new IllegalArgumentException("unknown role " + c.role);
            }
        }
        c.source = (String) m.get("source");
        Object f = m.get("file");
        if (f != null) {
            c.fileName = (String) ((Map<String, Object>) f).get("name");
            c.fileText = (String) ((Map<String, Object>) f).get("text");
        }
        Object second = m.get("second_file");
        if (second != null) {
            c.secondName = (String) ((Map<String, Object>) second).get("name");
            c.secondText = (String) ((Map<String, Object>) second).get("text");
        }
        Object d = m.get("dynamic");
        if (d != null) {
            for (Object kv : (List<Object>) d) {
                List<Object> l = (List<Object>) kv;
                c.dynamic.add(new String[] {(String) l.get(0), (String) l.get(1)});
            }
        }
        Object env = m.get("env");
        if (env != null) {
            c.envHeap = (String) ((Map<String, Object>) env).get(c.envName());
        }
        String script = c.isTaskManager() ? "flink" : "heap";
        c.target = m.get("legacy_target") == null ? script : (String) m.get("legacy_target");
        return c;
    }
}
