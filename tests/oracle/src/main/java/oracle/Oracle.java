package oracle;

import java.io.BufferedReader;
import java.io.BufferedWriter;
import java.io.File;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.OutputStreamWriter;
import java.io.Writer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The differential-test oracle: Flink's own jars resolve JobManager memory for generated (or
 * given) configurations, and every result is written as one JSON line for the C runner.
 *
 * <pre>
 * java --add-opens java.base/java.util=ALL-UNNAMED -cp HARNESS:FLINK_JARS oracle.Oracle MODE ...
 *   generate --line 1.20 --flink 1.20.5 --seed N --cases N --out FILE
 *   replay   --flink 1.20.5 [--in FILE] [--out FILE] [--real-env] [--causes] [--compatible-only]
 *                                             cases in, the same cases with results out
 *   vectors  --flink 1.20.5 --vectors flink-cases.json              compare the shared vectors
 *   envcheck --flink 1.20.5                                         FLINK_JM_HEAP edit vs. real env
 *   line     (the options of generate) --curated IN --curated-out OUT
 *            envcheck, generate, then replay --compatible-only of IN, in one JVM
 * </pre>
 *
 * Output schema (one case per line):
 * {"seed","id","flink","line","file":null|{"name","text"},"dynamic":[[k,v],...],
 *  "env":{}|{"FLINK_JM_HEAP":raw},"legacy_target":"heap"|"process"|"none",
 *  "result":{"total_process","total_flink","heap","off_heap","metaspace","overhead",
 *            "jvm_args","dynamic_configs"(null before 1.12)} | {"error","exception"}}
 */
public final class Oracle {
    private Oracle() {}

    public static void main(String[] argv) throws Exception {
        if (argv.length == 0) {
            usage();
        }
        Map<String, String> opt = new HashMap<>();
        for (int i = 1; i < argv.length; i++) {
            if (!argv[i].startsWith("--")) {
                usage();
            }
            String name = argv[i].substring(2);
            if (name.equals("real-env") || name.equals("causes") || name.equals("compatible-only")) {
                opt.put(name, "true");
            } else if (i + 1 < argv.length) {
                opt.put(name, argv[++i]);
            } else {
                usage();
            }
        }
        Flink flink = new Flink(opt.get("flink"));
        String line = flink.major + "." + flink.minor;
        Path work = Files.createTempDirectory("flink-jm-oracle-");
        try {
            switch (argv[0]) {
                case "generate":
                    generate(flink, line, opt, work);
                    break;
                case "replay":
                    replay(flink, line, opt, work);
                    break;
                case "vectors":
                    System.exit(Vectors.check(flink, opt.get("vectors"), work) ? 0 : 1);
                    break;
                case "envcheck":
                    System.exit(envSelfCheck(flink, line, work) ? 0 : 1);
                    break;
                case "line": {
                    if (!envSelfCheck(flink, line, work)) {
                        System.exit(1);
                    }
                    generate(flink, line, opt, work);
                    Map<String, String> curated = new HashMap<>();
                    curated.put("in", opt.get("curated"));
                    curated.put("out", opt.get("curated-out"));
                    curated.put("compatible-only", "true");
                    replay(flink, line, curated, work);
                    if (opt.containsKey("k8s-out")
                            && !Kube.check(flink.version, Long.parseLong(opt.get("seed")), 2000, opt.get("k8s-out"))) {
                        Files.deleteIfExists(Paths.get(opt.get("k8s-out")));
                    }
                    break;
                }
                default:
                    usage();
            }
        } finally {
            deleteTree(work.toFile());
        }
    }

    private static void usage() {
        System.err.println("usage: oracle.Oracle generate|replay|vectors|envcheck --flink VERSION [options]");
        System.exit(2);
    }

    private static void generate(Flink flink, String line, Map<String, String> opt, Path work) throws IOException {
        long seed = Long.parseLong(opt.get("seed"));
        int cases = Integer.parseInt(opt.getOrDefault("cases", "10000"));
        if (opt.containsKey("line") && !opt.get("line").equals(line)) {
            throw new IllegalArgumentException("--line " + opt.get("line") + " but the jars are " + flink.version);
        }
        Gen gen = new Gen(flink.major, flink.minor);
        long start = System.nanoTime();
        int ok = 0;
        Map<String, Integer> errors = new LinkedHashMap<>();
        try (Writer w = output(opt.get("out"))) {
            for (int id = 0; id < cases; id++) {
                Case c = gen.generate(seed, id);
                Map<String, Object> json = c.toJson(seed, id, flink.version, line);
                Map<String, Object> result = resolve(flink, c, work, false);
                json.put("result", result);
                w.write(Json.write(json));
                w.write('\n');
                if (result.containsKey("error")) {
                    errors.merge(String.valueOf(result.get("exception")), 1, Integer::sum);
                } else {
                    ok++;
                }
            }
        }
        System.err.printf("oracle %s (Flink %s): %d cases, seed %d, %d resolved, errors %s, %.1fs%n",
            line, flink.version, cases, seed, ok, errors, (System.nanoTime() - start) / 1e9);
    }

    @SuppressWarnings("unchecked")
    private static void replay(Flink flink, String line, Map<String, String> opt, Path work) throws IOException {
        boolean realEnv = opt.containsKey("real-env");
        boolean causes = opt.containsKey("causes");
        BufferedReader in = opt.containsKey("in")
            ? Files.newBufferedReader(Paths.get(opt.get("in")), StandardCharsets.UTF_8)
            : new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        try (Writer w = output(opt.get("out"))) {
            String text;
            long n = 0;
            while ((text = in.readLine()) != null) {
                if (text.trim().isEmpty()) {
                    continue;
                }
                Map<String, Object> given = (Map<String, Object>) Json.parse(text);
                Case c = Case.fromJson(given);
                if (opt.containsKey("compatible-only") && !compatible(flink, c)) {
                    n++;
                    continue;
                }
                long seed = given.get("seed") instanceof Long ? (Long) given.get("seed") : 0L;
                long id = given.get("id") instanceof Long ? (Long) given.get("id") : n;
                Map<String, Object> json = c.toJson(seed, (int) id, flink.version, line);
                json.put("result", resolve(flink, c, work, realEnv));
                if (causes && lastError != null) {
                    // Debugging aid, not part of the schema: the cause chain under the message.
                    List<Object> chain = new ArrayList<>();
                    for (Throwable t = lastError.getCause(); t != null; t = t.getCause()) {
                        chain.add(t.getClass().getSimpleName() + ": " + t.getMessage());
                    }
                    json.put("causes", chain);
                }
                w.write(Json.write(json));
                w.write('\n');
                n++;
            }
        }
    }

    /** Whether a hand-written case applies to this line (its file name and legacy target). */
    static boolean compatible(Flink flink, Case c) {
        boolean standardYaml = flink.major >= 2 || flink.minor >= 19;
        if ("config.yaml".equals(c.fileName) && !standardYaml) {
            return false;
        }
        if ("flink-conf.yaml".equals(c.fileName) && flink.major >= 2) {
            return false;
        }
        return flink.hasLegacy() || "none".equals(c.target);
    }

    private static Writer output(String path) throws IOException {
        if (path == null || path.equals("-")) {
            return new BufferedWriter(new OutputStreamWriter(System.out, StandardCharsets.UTF_8));
        }
        Path p = Paths.get(path);
        if (p.getParent() != null) {
            Files.createDirectories(p.getParent());
        }
        return Files.newBufferedWriter(p, StandardCharsets.UTF_8);
    }

    /** Writes the case's file into a fresh conf dir, sets FLINK_JM_HEAP, resolves with Flink. */
    static Map<String, Object> resolve(Flink flink, Case c, Path work, boolean realEnv) throws IOException {
        Path dir = work.resolve("conf");
        Files.createDirectories(dir);
        Files.deleteIfExists(dir.resolve("flink-conf.yaml"));
        Files.deleteIfExists(dir.resolve("config.yaml"));
        String name = c.fileName != null ? c.fileName : Case.fileNameFor(flink.major, flink.minor);
        String text = c.fileName != null ? c.fileText : "";
        Files.write(dir.resolve(name), text.getBytes(StandardCharsets.UTF_8));
        if (!realEnv) {
            Flink.setEnv("FLINK_JM_HEAP", c.envHeap);
        }
        Flink.Outcome o = flink.run(dir.toString(), c.dynamic, c.target);
        lastError = o.error;
        return toJson(o);
    }

    /** The exception of the last resolve() call, for replay --causes. */
    private static Throwable lastError;

    static Map<String, Object> toJson(Flink.Outcome o) {
        Map<String, Object> r = new LinkedHashMap<>();
        if (o.error != null) {
            r.put("error", o.error.getMessage());
            r.put("exception", o.error.getClass().getSimpleName());
            return r;
        }
        r.put("total_process", o.totalProcess);
        r.put("total_flink", o.totalFlink);
        r.put("heap", o.heap);
        r.put("off_heap", o.offHeap);
        r.put("metaspace", o.metaspace);
        r.put("overhead", o.overhead);
        r.put("jvm_args", o.jvmArgs);
        r.put("dynamic_configs", o.dynamicConfigs);
        return r;
    }

    /**
     * Shows that editing the environment map really changes what Flink sees: a set of cases with
     * FLINK_JM_HEAP is resolved here (edited env) and by a child JVM that is given the variable
     * for real; the lines must be identical, and in 1.x the variable must change some results.
     */
    private static boolean envSelfCheck(Flink flink, String line, Path work) throws Exception {
        String[] values = {"768 MB", "", "1g", "2048m", "1024", " 512m ", "abc", "-1g"};
        int childRuns = 2; // a child JVM per value is slow; the first values are compared there
        String[][] configs = {{}, {"jobmanager.memory.process.size", "1600m"},
            {"jobmanager.heap.size", "512m"}, {"jobmanager.heap.mb", "700"}};
        String[] targets = flink.hasLegacy() ? new String[] {"heap", "process", "none"} : new String[] {"none"};
        boolean ok = true;
        int changed = 0;
        for (String value : values) {
            List<Case> cases = new ArrayList<>();
            for (String[] cfg : configs) {
                for (String target : targets) {
                    Case c = new Case();
                    if (cfg.length > 0) {
                        c.dynamic.add(cfg);
                    }
                    c.target = target;
                    c.envHeap = value;
                    cases.add(c);
                }
            }
            StringBuilder input = new StringBuilder();
            List<String> here = new ArrayList<>();
            for (int i = 0; i < cases.size(); i++) {
                Case c = cases.get(i);
                Map<String, Object> json = c.toJson(0, i, flink.version, line);
                input.append(Json.write(json)).append('\n');
                json.put("result", resolve(flink, c, work, false));
                here.add(Json.write(json));
                c.envHeap = null;
                Map<String, Object> without = resolve(flink, c, work, false);
                if (!without.equals(json.get("result"))) {
                    changed++;
                }
                c.envHeap = value;
            }
            if (childRuns-- <= 0) {
                continue;
            }
            List<String> child = runChild(flink, input.toString(), value);
            if (!child.equals(here)) {
                ok = false;
                for (int i = 0; i < here.size(); i++) {
                    String other = i < child.size() ? child.get(i) : "<missing>";
                    if (!here.get(i).equals(other)) {
                        System.err.println("env mismatch:\n  edited: " + here.get(i) + "\n  real:   " + other);
                        break;
                    }
                }
            }
        }
        if (flink.hasLegacy() && changed == 0) {
            System.err.println("FLINK_JM_HEAP changed no result: the environment edit has no effect");
            ok = false;
        }
        if (!flink.hasLegacy() && changed != 0) {
            System.err.println("FLINK_JM_HEAP changed " + changed + " results in a 2.x line");
            ok = false;
        }
        System.err.printf("envcheck %s: %s (%d of %d results depend on FLINK_JM_HEAP; a real environment "
            + "gave the same results for %d values)%n", flink.version, ok ? "ok" : "FAILED", changed,
            values.length * configs.length * targets.length, 2);
        return ok;
    }

    private static List<String> runChild(Flink flink, String input, String envValue) throws Exception {
        String java = Paths.get(System.getProperty("java.home"), "bin", "java").toString();
        List<String> cmd = new ArrayList<>();
        cmd.add(java);
        cmd.add("-cp");
        cmd.add(System.getProperty("java.class.path"));
        cmd.add(Oracle.class.getName());
        cmd.add("replay");
        cmd.add("--flink");
        cmd.add(flink.version);
        cmd.add("--real-env");
        ProcessBuilder pb = new ProcessBuilder(cmd);
        pb.environment().put("FLINK_JM_HEAP", envValue);
        pb.redirectError(ProcessBuilder.Redirect.INHERIT);
        Process p = pb.start();
        try (Writer w = new OutputStreamWriter(p.getOutputStream(), StandardCharsets.UTF_8)) {
            w.write(input);
        }
        List<String> out = new ArrayList<>();
        try (BufferedReader r = new BufferedReader(new InputStreamReader(p.getInputStream(), StandardCharsets.UTF_8))) {
            String s;
            while ((s = r.readLine()) != null) {
                out.add(s);
            }
        }
        if (p.waitFor() != 0) {
            throw new IllegalStateException("child JVM failed");
        }
        return out;
    }

    static void deleteTree(File f) {
        File[] children = f.listFiles();
        if (children != null) {
            for (File c : children) {
                deleteTree(c);
            }
        }
        f.delete();
    }
}
