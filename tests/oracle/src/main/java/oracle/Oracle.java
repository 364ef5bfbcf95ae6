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
 * The differential-test oracle: Flink's own jars resolve JobManager and TaskManager memory for
 * generated (or given) configurations, and every result is written as one JSON line for the C
 * runner.
 *
 * <pre>
 * java --add-opens java.base/java.util=ALL-UNNAMED -cp HARNESS:FLINK_JARS oracle.Oracle MODE ...
 *   generate --line 1.20 --flink 1.20.5 --seed N --cases N --out FILE [--role taskmanager]
 *   replay   --flink 1.20.5 [--in FILE] [--out FILE] [--real-env] [--causes] [--compatible-only]
 *                                             cases in, the same cases with results out
 *   vectors  --flink 1.20.5 --vectors flink-cases.json              compare the shared vectors
 *   envcheck --flink 1.20.5                          FLINK_JM_HEAP / FLINK_TM_HEAP edit vs. real env
 *   line     [(the options of generate) --curated IN --curated-out OUT [--k8s-out OUT]]
 *            [--tm-out OUT [--tm-cases N] --tm-curated IN --tm-curated-out OUT
 *             --tm-data A.json,B.json --tm-data-out OUT]
 *            envcheck, generate, then replay --compatible-only of IN, in one JVM, for JobManagers
 *            when --out is given and for TaskManagers when --tm-out is (with the cases of the
 *            unit-test data files)
 * </pre>
 *
 * Output schema (one case per line):
 * {"seed","id","flink","line",["role":"taskmanager",]["source",]"file":null|{"name","text"},
 *  ["second_file":{"name","text"} (the other file in the same conf dir: SecondFile),]
 *  "dynamic":[[k,v],...],"env":{}|{"FLINK_JM_HEAP" or "FLINK_TM_HEAP":raw},"legacy_target",
 *  "result": JobManager: {"total_process","total_flink","heap","off_heap","metaspace","overhead",
 *            "jvm_args","dynamic_configs"(null before 1.12)}
 *          | TaskManager: {"framework_heap",...,"jvm_direct" (FlinkTm.SIZE_NAMES),"cpu_cores",
 *            ["slots","resources":[[name,amount],...] (1.13+),]"jvm_args","dynamic_configs"}
 *          | {"error","exception"}}
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
        FlinkTm tm = new FlinkTm(flink);
        String line = flink.major + "." + flink.minor;
        Path work = Files.createTempDirectory("flink-jm-oracle-");
        try {
            switch (argv[0]) {
                case "generate":
                    generate(flink, tm, line, opt, work);
                    break;
                case "replay":
                    replay(flink, tm, line, opt, work);
                    break;
                case "vectors":
                    System.exit(Vectors.check(flink, opt.get("vectors"), work) ? 0 : 1);
                    break;
                case "envcheck": {
                    boolean jm = envSelfCheck(flink, tm, line, work, Case.JOBMANAGER);
                    boolean tms = envSelfCheck(flink, tm, line, work, Case.TASKMANAGER);
                    System.exit(jm && tms ? 0 : 1);
                    break;
                }
                case "line": {
                    // Each role runs where its output is named (--out, --tm-out): the environment
                    // check, the random cases, the curated cases; each role's part is timed.
                    StringBuilder times = new StringBuilder();
                    if (opt.containsKey("out")) {
                        long start = System.nanoTime();
                        if (!envSelfCheck(flink, tm, line, work, Case.JOBMANAGER)) {
                            System.exit(1);
                        }
                        generate(flink, tm, line, opt, work);
                        Map<String, String> curated = new HashMap<>();
                        curated.put("in", opt.get("curated"));
                        curated.put("out", opt.get("curated-out"));
                        curated.put("compatible-only", "true");
                        replay(flink, tm, line, curated, work);
                        if (opt.containsKey("k8s-out")
                                && !Kube.check(flink.version, Long.parseLong(opt.get("seed")), 2000, opt.get("k8s-out"))) {
                            Files.deleteIfExists(Paths.get(opt.get("k8s-out")));
                        }
                        times.append(String.format("jobmanager %.1fs", (System.nanoTime() - start) / 1e9));
                    }
                    if (opt.containsKey("tm-out")) {
                        long start = System.nanoTime();
                        if (!envSelfCheck(flink, tm, line, work, Case.TASKMANAGER)) {
                            System.exit(1);
                        }
                        Map<String, String> tmOpt = new HashMap<>(opt);
                        tmOpt.put("role", Case.TASKMANAGER);
                        tmOpt.put("out", opt.get("tm-out"));
                        tmOpt.put("cases", opt.getOrDefault("tm-cases", opt.getOrDefault("cases", "10000")));
                        generate(flink, tm, line, tmOpt, work);
                        if (opt.containsKey("tm-curated")) {
                            Map<String, String> tmCurated = new HashMap<>();
                            tmCurated.put("in", opt.get("tm-curated"));
                            tmCurated.put("out", opt.get("tm-curated-out"));
                            tmCurated.put("compatible-only", "true");
                            replay(flink, tm, line, tmCurated, work);
                        }
                        if (opt.containsKey("tm-data")) {
                            unitTestData(flink, tm, line, opt.get("tm-data").split(","), opt.get("tm-data-out"), work);
                        }
                        times.append(times.length() > 0 ? ", " : "")
                            .append(String.format("taskmanager %.1fs", (System.nanoTime() - start) / 1e9));
                    }
                    System.err.printf("oracle %s (Flink %s): %s%n", line, flink.version, times);
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

    private static void generate(Flink flink, FlinkTm tm, String line, Map<String, String> opt, Path work)
            throws IOException {
        long seed = Long.parseLong(opt.get("seed"));
        int cases = Integer.parseInt(opt.getOrDefault("cases", "10000"));
        if (opt.containsKey("line") && !opt.get("line").equals(line)) {
            throw new IllegalArgumentException("--line " + opt.get("line") + " but the jars are " + flink.version);
        }
        String role = opt.getOrDefault("role", Case.JOBMANAGER);
        boolean taskManager = Case.TASKMANAGER.equals(role);
        if (!taskManager && !Case.JOBMANAGER.equals(role)) {
            throw new IllegalArgumentException("unknown role " + role);
        }
        Gen gen = new Gen(flink.major, flink.minor);
        TmGen tmGen = new TmGen(flink.major, flink.minor);
        long start = System.nanoTime();
        int ok = 0;
        Map<String, Integer> errors = new LinkedHashMap<>();
        try (Writer w = output(opt.get("out"))) {
            for (int id = 0; id < cases; id++) {
                Case c = taskManager ? tmGen.generate(seed, id) : gen.generate(seed, id);
                SecondFile.maybeAdd(c, seed, id, flink.major, flink.minor);
                Map<String, Object> json = c.toJson(seed, id, flink.version, line);
                Map<String, Object> result = resolve(flink, tm, c, work, false);
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
        System.err.printf("oracle %s (Flink %s)%s: %d cases, seed %d, %d resolved, errors %s, %.1fs%n",
            line, flink.version, taskManager ? " taskmanager" : "", cases, seed, ok, errors,
            (System.nanoTime() - start) / 1e9);
    }

    /**
     * The cases of pkg/tmmem's unit-test data (tests/data/tmmem-*.json: Flink's own tests and the
     * edges beyond them) through this line's jars: each case's settings as -D properties, its
     * "legacy" reading as the target, its FLINK_TM_HEAP, and for "standard_yaml" an empty
     * config.yaml (1.19 and 1.20 then read list options as YAML). Seed 0, id the index in its
     * file. Where a group of the case's "by_line" names this line, its expected values go along
     * as "expect", so that the runner checks the data itself against Flink, not only our model.
     */
    @SuppressWarnings("unchecked")
    private static void unitTestData(Flink flink, FlinkTm tm, String line, String[] files, String out, Path work)
            throws IOException {
        int n = 0;
        try (Writer w = output(out)) {
            for (String file : files) {
                Path path = Paths.get(file);
                Map<String, Object> data = (Map<String, Object>) Json.parse(
                    new String(Files.readAllBytes(path), StandardCharsets.UTF_8));
                List<Object> cases = (List<Object>) data.get("cases");
                for (int i = 0; i < cases.size(); i++) {
                    Map<String, Object> given = (Map<String, Object>) cases.get(i);
                    Case c = new Case();
                    c.role = Case.TASKMANAGER;
                    c.source = path.getFileName() + "#" + i;
                    for (Map.Entry<String, Object> e : ((Map<String, Object>) given.get("config")).entrySet()) {
                        c.dynamic.add(new String[] {e.getKey(), (String) e.getValue()});
                    }
                    c.target = given.get("legacy") == null ? "none" : (String) given.get("legacy");
                    Object env = given.get("env");
                    if (env != null) {
                        c.envHeap = (String) ((Map<String, Object>) env).get(c.envName());
                    }
                    if (Boolean.TRUE.equals(given.get("standard_yaml")) && flink.major == 1 && flink.minor >= 19) {
                        c.fileName = "config.yaml";
                        c.fileText = "";
                    }
                    if (!compatible(flink, tm, c)) {
                        continue;
                    }
                    Map<String, Object> json = c.toJson(0, i, flink.version, line);
                    Map<String, Object> expect = expectation(given, line);
                    if (expect != null) {
                        json.put("expect", expect);
                    }
                    json.put("result", resolve(flink, tm, c, work, false));
                    w.write(Json.write(json));
                    w.write('\n');
                    n++;
                }
            }
        }
        System.err.printf("oracle %s (Flink %s) taskmanager: %d cases of the unit-test data%n", line, flink.version, n);
    }

    /** The lines the unit-test data names, oldest first (tests/unit/tmmem's LINES). */
    private static final List<String> DATA_LINES = List.of("1.11", "1.12", "1.13", "1.14", "1.15", "1.16", "1.17",
        "1.18", "1.19", "1.20", "2.0", "2.1", "2.2", "2.3");

    /**
     * What a unit-test data case expects on `line`: the "expect" of the by_line group whose
     * range ("1.11-2.3", "1.17") holds the line, with its "jvm_args" and the "dynamic_configs" of
     * the newest line at or before this one; null when no group names the line.
     */
    @SuppressWarnings("unchecked")
    private static Map<String, Object> expectation(Map<String, Object> given, String line) {
        Object groups = given.get("by_line");
        int at = DATA_LINES.indexOf(line);
        if (!(groups instanceof List) || at < 0) {
            return null;
        }
        for (Object o : (List<Object>) groups) {
            Map<String, Object> g = (Map<String, Object>) o;
            String[] range = ((String) g.get("lines")).split("-");
            int first = DATA_LINES.indexOf(range[0]);
            int last = DATA_LINES.indexOf(range[range.length - 1]);
            if (first < 0 || last < 0) {
                throw new IllegalArgumentException("unknown lines " + g.get("lines"));
            }
            if (at < first || at > last) {
                continue;
            }
            Map<String, Object> expect = new LinkedHashMap<>((Map<String, Object>) g.get("expect"));
            if (g.get("jvm_args") != null) {
                expect.put("jvm_args", g.get("jvm_args"));
            }
            Map<String, Object> dynamic = (Map<String, Object>) g.get("dynamic_configs");
            for (int i = 0; dynamic != null && i <= at; i++) {
                if (dynamic.get(DATA_LINES.get(i)) != null) {
                    expect.put("dynamic_configs", dynamic.get(DATA_LINES.get(i)));
                }
            }
            return expect;
        }
        return null;
    }

    @SuppressWarnings("unchecked")
    private static void replay(Flink flink, FlinkTm tm, String line, Map<String, String> opt, Path work)
            throws IOException {
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
                if (opt.containsKey("compatible-only") && !compatible(flink, tm, c)) {
                    n++;
                    continue;
                }
                long seed = given.get("seed") instanceof Long ? (Long) given.get("seed") : 0L;
                long id = given.get("id") instanceof Long ? (Long) given.get("id") : n;
                Map<String, Object> json = c.toJson(seed, (int) id, flink.version, line);
                json.put("result", resolve(flink, tm, c, work, realEnv));
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
    static boolean compatible(Flink flink, FlinkTm tm, Case c) {
        boolean standardYaml = flink.major >= 2 || flink.minor >= 19;
        if ("config.yaml".equals(c.fileName) && !standardYaml) {
            return false;
        }
        if ("flink-conf.yaml".equals(c.fileName) && flink.major >= 2) {
            return false;
        }
        if (c.isTaskManager()) {
            // "flink" is the scripts' path in every line; 2.x has no legacy step to take.
            return "flink".equals(c.target) || "none".equals(c.target) || ("process".equals(c.target) && tm.hasLegacy());
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

    /**
     * Writes the case's file into a fresh conf dir, sets the role's legacy heap variable (and
     * unsets the other role's), resolves with Flink.
     */
    static Map<String, Object> resolve(Flink flink, FlinkTm tm, Case c, Path work, boolean realEnv)
            throws IOException {
        Path dir = work.resolve("conf");
        Files.createDirectories(dir);
        Files.deleteIfExists(dir.resolve("flink-conf.yaml"));
        Files.deleteIfExists(dir.resolve("config.yaml"));
        String name = c.fileName != null ? c.fileName : Case.fileNameFor(flink.major, flink.minor);
        String text = c.fileName != null ? c.fileText : "";
        Files.write(dir.resolve(name), text.getBytes(StandardCharsets.UTF_8));
        if (c.secondName != null) {
            Files.write(dir.resolve(c.secondName), c.secondText.getBytes(StandardCharsets.UTF_8));
        }
        if (!realEnv) {
            Flink.setEnv(c.envName(), c.envHeap);
            Flink.setEnv(c.isTaskManager() ? "FLINK_JM_HEAP" : "FLINK_TM_HEAP", null);
        }
        if (c.isTaskManager()) {
            FlinkTm.Outcome o = tm.run(dir.toString(), c.dynamic, c.target);
            lastError = o.error;
            return toJson(o);
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

    static Map<String, Object> toJson(FlinkTm.Outcome o) {
        Map<String, Object> r = new LinkedHashMap<>();
        if (o.error != null) {
            r.put("error", o.error.getMessage());
            r.put("exception", o.error.getClass().getSimpleName());
            return r;
        }
        for (int i = 0; i < FlinkTm.SIZE_NAMES.length; i++) {
            r.put(FlinkTm.SIZE_NAMES[i], o.sizes[i]);
        }
        r.put("cpu_cores", o.cpuCores);
        if (o.slots != null) {
            r.put("slots", o.slots);
            r.put("resources", o.resources);
        }
        r.put("jvm_args", o.jvmArgs);
        r.put("dynamic_configs", o.dynamicConfigs);
        return r;
    }

    /**
     * Shows that editing the environment map really changes what Flink sees: a set of cases with
     * the role's variable (FLINK_JM_HEAP, FLINK_TM_HEAP) is resolved here (edited env) and by a
     * child JVM that is given the variable for real; the lines must be identical, and in 1.x the
     * variable must change some results.
     */
    private static boolean envSelfCheck(Flink flink, FlinkTm tm, String line, Path work, String role)
            throws Exception {
        boolean taskManager = Case.TASKMANAGER.equals(role);
        String[] values = {"768 MB", "", "1g", "2048m", "1024", " 512m ", "abc", "-1g"};
        int childRuns = 2; // a child JVM per value is slow; the first values are compared there
        String prefix = taskManager ? "taskmanager" : "jobmanager";
        String[][] configs = {{}, {prefix + ".memory.process.size", taskManager ? "1728m" : "1600m"},
            {prefix + ".heap.size", "512m"}, {prefix + ".heap.mb", "700"}};
        String[] targets;
        if (taskManager) {
            targets = tm.hasLegacy() ? new String[] {"flink", "process", "none"} : new String[] {"flink"};
        } else {
            targets = flink.hasLegacy() ? new String[] {"heap", "process", "none"} : new String[] {"none"};
        }
        boolean ok = true;
        int changed = 0;
        for (String value : values) {
            List<Case> cases = new ArrayList<>();
            for (String[] cfg : configs) {
                for (String target : targets) {
                    Case c = new Case();
                    c.role = role;
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
                json.put("result", resolve(flink, tm, c, work, false));
                here.add(Json.write(json));
                c.envHeap = null;
                Map<String, Object> without = resolve(flink, tm, c, work, false);
                if (!without.equals(json.get("result"))) {
                    changed++;
                }
                c.envHeap = value;
            }
            if (childRuns-- <= 0) {
                continue;
            }
            List<String> child = runChild(flink, input.toString(), cases.get(0).envName(), value);
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
        String variable = taskManager ? "FLINK_TM_HEAP" : "FLINK_JM_HEAP";
        if (flink.hasLegacy() && changed == 0) {
            System.err.println(variable + " changed no result: the environment edit has no effect");
            ok = false;
        }
        if (!flink.hasLegacy() && changed != 0) {
            System.err.println(variable + " changed " + changed + " results in a 2.x line");
            ok = false;
        }
        System.err.printf("envcheck %s %s: %s (%d of %d results depend on %s; a real environment "
            + "gave the same results for %d values)%n", flink.version, role, ok ? "ok" : "FAILED", changed,
            values.length * configs.length * targets.length, variable, 2);
        return ok;
    }

    /** Replays `input` in a child JVM whose environment really has `name`=`envValue` (and
     * neither role's variable otherwise). */
    private static List<String> runChild(Flink flink, String input, String name, String envValue) throws Exception {
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
        pb.environment().remove("FLINK_JM_HEAP");
        pb.environment().remove("FLINK_TM_HEAP");
        pb.environment().put(name, envValue);
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
