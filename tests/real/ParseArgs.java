/*
 * What a Flink cluster entrypoint's or TaskManager runner's main does with its arguments before
 * the JobManager or TaskManager starts, run with Flink's own classes: java-wrapper.sh
 * (tests/real) runs this with the main class's JVM options and its class path (the release's
 * flink-dist jar), before the JVM is started again with -XX:+PrintFlagsFinal -version in place of
 * the main class.
 *
 *   java <the main class's JVM options, this class's directory first on the class path>
 *        ParseArgs RESULT_FILE MAIN_CLASS [the main class's program arguments...]
 *
 * Per entrypoint, as its main does it in Flink 1.11 to 2.3 (read from each line's flink-dist
 * bytecode and flink-runtime's sources):
 *
 *   runtime.entrypoint.StandaloneSessionClusterEntrypoint
 *       new CommandLineParser<>(new EntrypointClusterConfigurationParserFactory()).parse(args)
 *       (ClusterEntrypointUtils.parseParametersOrExit from 1.12, the same code inline in 1.11),
 *       then ClusterEntrypoint.loadConfiguration(that): GlobalConfiguration.loadConfiguration of
 *       the --configDir with the -D dynamic properties, --host and --webui-port applied.
 *   container.entrypoint.StandaloneApplicationClusterEntryPoint
 *       the same with StandaloneApplicationClusterConfigurationParserFactory, then
 *       StandaloneApplicationClusterEntryPoint.loadConfigurationFromClusterConfig(that).
 *   kubernetes.entrypoint.KubernetesSessionClusterEntrypoint, ...KubernetesApplicationClusterEntrypoint
 *       from 1.12 DynamicParametersConfigurationParserFactory (only -D key=value), then
 *       KubernetesEntrypointUtils.loadConfiguration(those): the conf dir named by the
 *       FLINK_CONF_DIR environment variable, the pod IP when HA is on; in 1.11 main ignores its
 *       arguments and calls KubernetesEntrypointUtils.loadConfiguration().
 *
 *   runtime.taskexecutor.TaskManagerRunner (taskmanager.sh's flink-console.sh taskexecutor)
 *       TaskManagerRunner.loadConfiguration(args): ConfigurationParserUtils.loadCommonConfiguration
 *       with ClusterConfigurationParserFactory (--configDir required, -D key=value), then
 *       GlobalConfiguration.loadConfiguration of the --configDir with the -D properties; a
 *       FlinkParseException is logged ("Could not load the configuration.") and the JVM exits
 *       with TaskManagerRunner.FAILURE_EXIT_CODE (runTaskManagerProcessSecurely, every line).
 *   kubernetes.taskmanager.KubernetesTaskExecutorRunner (kubernetes-taskmanager.sh, native mode)
 *       the same loading; in 1.11 main first requires the environment variable _FLINK_POD_NAME
 *       (checkArgument: "Pod name variable %s not set"); from 1.16 (its own
 *       runTaskManagerSecurely) it requires _POD_NODE_ID after loading (checkState: "The
 *       environment variable %s is not set, which is used to identify the node where the task
 *       manager is located."), which Flink's native pods get from spec.nodeName.
 *   then, for both, what TaskManagerRunner.startTaskManager does with the memory first:
 *       TaskExecutorResourceUtils.resourceSpecFromConfig(configuration), which refuses a
 *       configuration whose fine-grained sizes are not all set (taskmanager.cpu.cores, the
 *       framework, task, network and managed sizes, network min = max: what BashJavaUtils' or the
 *       resource manager's -D give); a refusal ends the TaskManager ("Terminating
 *       TaskManagerRunner with exit code 1."). Its sizes are written in the result line
 *       ("TaskExecutorResourceSpec: cpuCores=..., taskHeap=...b, ...", with the framework heap
 *       and off-heap sizes the configuration gives), for test_real_start.py to compare.
 *
 * Where it stops: before the application entrypoints look for the job's program
 * (getPackagedProgram: the job jar and class, which this suite's releases do not have; in 1.11
 * that comes before the configuration is loaded) and before the entrypoint object is built and
 * run; for a TaskManager, before its RPC service, high-availability services (which look for the
 * JobManager) and TaskExecutor are made. Other classes (YARN entrypoints, the history server) are
 * not modelled: it says so and exits 0.
 *
 * A failure is reported as the real main would end: the parser's failure as
 * parseParametersOrExit logs it ("Could not parse command line arguments [...]." with the
 * FlinkParseException and its cause), the usage Flink prints, exit 1
 * (ClusterEntrypoint.STARTUP_FAILURE_RETURN_CODE); an exception out of loading the
 * configuration as the JVM prints an uncaught one from main, exit 1; a TaskManager's as above.
 * RESULT_FILE gets one line: "ok: ...", "failed: ...", "not modelled: ..." (exit 0), or
 * "error: ..." (exit 3) when this class itself could not do it (a class or method it looks for is
 * not in the line's jars).
 *
 * Only reflection: it compiles without Flink and runs against any line's jars.
 */
import java.io.FileOutputStream;
import java.io.OutputStreamWriter;
import java.io.PrintWriter;
import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Method;
import java.lang.reflect.Modifier;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.TreeMap;

public final class ParseArgs {
    private static final String RUNTIME = "org.apache.flink.runtime.entrypoint.";
    private static final String CONTAINER = "org.apache.flink.container.entrypoint.";
    private static final String KUBERNETES = "org.apache.flink.kubernetes.entrypoint.";
    private static final String TASKEXECUTOR = "org.apache.flink.runtime.taskexecutor.";
    private static final String KUBERNETES_TM = "org.apache.flink.kubernetes.taskmanager.";

    private static String resultFile;

    public static void main(String[] argv) {
        if (argv.length < 2) {
            System.err.println("usage: ParseArgs RESULT_FILE ENTRYPOINT_CLASS [ARGS...]");
            System.exit(2);
        }
        resultFile = argv[0];
        try {
            run(argv[1], Arrays.copyOfRange(argv, 2, argv.length));
        } catch (Throwable t) {
            // Not Flink's failure: this class could not do what main does (a class or method of
            // the line not found). Exit 3, never taken for a JobManager that cannot start.
            t.printStackTrace();
            result("error: ParseArgs: " + chain(t));
            System.exit(3);
        }
        System.exit(0);
    }

    private static void run(String entrypoint, String[] args) throws Exception {
        String simpleName = entrypoint.substring(entrypoint.lastIndexOf('.') + 1);

        switch (entrypoint) {
            case RUNTIME + "StandaloneSessionClusterEntrypoint": {
                Object parsed = parse(args, RUNTIME + "EntrypointClusterConfigurationParserFactory", simpleName);
                Object conf = load(() -> staticMethod(RUNTIME + "ClusterEntrypoint", "loadConfiguration", 1)
                        .invoke(null, parsed));
                ok(simpleName, describeParsed(parsed), conf, "jobmanager.memory.", "");
                break;
            }
            case CONTAINER + "StandaloneApplicationClusterEntryPoint": {
                Object parsed = parse(args, CONTAINER + "StandaloneApplicationClusterConfigurationParserFactory", simpleName);
                Object conf = load(() -> staticMethod(entrypoint, "loadConfigurationFromClusterConfig", 1)
                        .invoke(null, parsed));
                ok(simpleName, describeParsed(parsed) + " (the job's program is not looked for)", conf,
                        "jobmanager.memory.", "");
                break;
            }
            case KUBERNETES + "KubernetesSessionClusterEntrypoint":
            case KUBERNETES + "KubernetesApplicationClusterEntrypoint": {
                String utils = KUBERNETES + "KubernetesEntrypointUtils";
                Method withDynamic = staticMethodOrNull(utils, "loadConfiguration", 1);
                Object conf;
                String parsedText;
                if (withDynamic != null) {
                    Object dynamic = parse(args, RUNTIME + "DynamicParametersConfigurationParserFactory", simpleName);
                    Object map = call(dynamic, "toMap");
                    parsedText = (map instanceof Map ? ((Map<?, ?>) map).size() : "?") + " -D properties";
                    conf = load(() -> withDynamic.invoke(null, dynamic));
                } else {
                    // Flink 1.11: main reads no arguments.
                    parsedText = "arguments not read by this line's main (" + args.length + " given)";
                    conf = load(() -> staticMethod(utils, "loadConfiguration", 0).invoke(null));
                }
                ok(simpleName, parsedText + ", FLINK_CONF_DIR=" + System.getenv("FLINK_CONF_DIR"), conf,
                        "jobmanager.memory.", "");
                break;
            }
            case TASKEXECUTOR + "TaskManagerRunner":
            case KUBERNETES_TM + "KubernetesTaskExecutorRunner": {
                boolean kubernetes = entrypoint.startsWith(KUBERNETES_TM);
                String runner = TASKEXECUTOR + "TaskManagerRunner";
                // 1.11: TaskManagerRunner.runTaskManagerProcessSecurely(String[], ResourceID), and
                // the Kubernetes runner's main checks _FLINK_POD_NAME before anything else.
                boolean line111 = staticMethodOrNull(runner, "runTaskManagerProcessSecurely", 2) != null;
                if (kubernetes && line111 && System.getenv("_FLINK_POD_NAME") == null) {
                    uncaught(new IllegalArgumentException("Pod name variable _FLINK_POD_NAME not set"));
                }
                Object conf = loadTaskManagerConfiguration(runner, args);
                // From 1.16 the Kubernetes runner's runTaskManagerSecurely checks _POD_NODE_ID.
                if (kubernetes && staticMethodOrNull(entrypoint, "runTaskManagerSecurely", 1) != null
                        && System.getenv("_POD_NODE_ID") == null) {
                    uncaught(new IllegalStateException("The environment variable _POD_NODE_ID is not set, "
                            + "which is used to identify the node where the task manager is located."));
                }
                String spec = taskExecutorResourceSpec(conf);
                // The arguments as loadCommonConfiguration parsed them (they parsed: it loaded).
                Object parsed = parse(args, RUNTIME + "ClusterConfigurationParserFactory", simpleName);
                ok(simpleName, describeParsed(parsed), conf, "taskmanager.memory.", "; " + spec);
                break;
            }
            default:
                result("not modelled: " + entrypoint + " (its main's parsing is not run here)");
                System.out.println("ParseArgs: " + entrypoint + ": not modelled, nothing parsed");
        }
    }

    private interface Call {
        Object call() throws Exception;
    }

    /** new CommandLineParser<>(new FACTORY()).parse(args), failing as parseParametersOrExit does. */
    private static Object parse(String[] args, String factoryClass, String simpleName) throws Exception {
        Class<?> parserClass = Class.forName(RUNTIME + "parser.CommandLineParser");
        Class<?> resultFactory = Class.forName(RUNTIME + "parser.ParserResultFactory");
        Object factory = Class.forName(factoryClass).getDeclaredConstructor().newInstance();
        Object parser = parserClass.getConstructor(resultFactory).newInstance(factory);
        try {
            return parserClass.getMethod("parse", String[].class).invoke(parser, (Object) args);
        } catch (InvocationTargetException e) {
            Throwable t = e.getCause();
            String head = "Could not parse command line arguments " + Arrays.toString(args) + ".";
            System.err.println(head);
            t.printStackTrace();
            System.err.flush();
            parserClass.getMethod("printHelp", String.class).invoke(parser, simpleName);
            System.out.flush();
            fail(simpleName + ".main: " + head + " " + chain(t));
            return null;
        }
    }

    /** Loading the configuration; an exception ends main as an uncaught one would. */
    private static Object load(Call call) throws Exception {
        try {
            return call.call();
        } catch (InvocationTargetException e) {
            uncaught(e.getCause());
            return null;
        }
    }

    /**
     * TaskManagerRunner.loadConfiguration(args), ending as runTaskManagerProcessSecurely does on a
     * FlinkParseException (loadCommonConfiguration has logged it and printed the usage) and as an
     * uncaught exception from main on anything else.
     */
    private static Object loadTaskManagerConfiguration(String runner, String[] args) throws Exception {
        Method load = staticMethod(runner, "loadConfiguration", 1);
        try {
            return load.invoke(null, (Object) args);
        } catch (InvocationTargetException e) {
            Throwable t = e.getCause();
            if (t != null && t.getClass().getName().endsWith(".FlinkParseException")) {
                System.err.println("Could not load the configuration.");
                t.printStackTrace();
                System.err.flush();
                fail("TaskManagerRunner: Could not load the configuration. " + chain(t), taskManagerFailureCode());
            }
            uncaught(t);
            return null;
        }
    }

    /**
     * TaskExecutorResourceUtils.resourceSpecFromConfig(configuration), as startTaskManager calls it;
     * a refusal ends the TaskManager as runTaskManagerProcessSecurely ends it. The spec's sizes and
     * the framework sizes the configuration gives, as one text.
     */
    private static String taskExecutorResourceSpec(Object conf) throws Exception {
        Method spec = staticMethod(TASKEXECUTOR + "TaskExecutorResourceUtils", "resourceSpecFromConfig", 1);
        Object s;
        try {
            s = spec.invoke(null, conf);
        } catch (InvocationTargetException e) {
            Throwable t = e.getCause();
            int code = taskManagerFailureCode();
            System.err.println("Terminating TaskManagerRunner with exit code " + code + ".");
            t.printStackTrace();
            System.err.flush();
            fail("Terminating TaskManagerRunner with exit code " + code + ": " + chain(t), code);
            return null;
        }
        Object cpu = call(call(s, "getCpuCores"), "getValue");
        Class<?> options = Class.forName("org.apache.flink.configuration.TaskManagerOptions");
        Method get = conf.getClass().getMethod("get", Class.forName("org.apache.flink.configuration.ConfigOption"));
        Object frameworkHeap = get.invoke(conf, options.getField("FRAMEWORK_HEAP_MEMORY").get(null));
        Object frameworkOffHeap = get.invoke(conf, options.getField("FRAMEWORK_OFF_HEAP_MEMORY").get(null));
        return "TaskExecutorResourceSpec: cpuCores=" + cpu
                + ", taskHeap=" + bytes(call(s, "getTaskHeapSize"))
                + ", taskOffHeap=" + bytes(call(s, "getTaskOffHeapSize"))
                + ", network=" + bytes(call(s, "getNetworkMemSize"))
                + ", managed=" + bytes(call(s, "getManagedMemorySize"))
                + ", frameworkHeap=" + bytes(frameworkHeap)
                + ", frameworkOffHeap=" + bytes(frameworkOffHeap);
    }

    private static String bytes(Object memorySize) {
        Object b = memorySize == null ? null : call(memorySize, "getBytes");
        return b == null ? "?" : b + "b";
    }

    private static int taskManagerFailureCode() {
        try {
            java.lang.reflect.Field f = Class.forName(TASKEXECUTOR + "TaskManagerRunner")
                    .getDeclaredField("FAILURE_EXIT_CODE");
            f.setAccessible(true);
            return f.getInt(null);
        } catch (ReflectiveOperationException | RuntimeException e) {
            return 1;
        }
    }

    /** An exception out of main: the JVM prints it and exits 1. */
    private static void uncaught(Throwable t) {
        System.err.print("Exception in thread \"main\" ");
        t.printStackTrace();
        System.err.flush();
        result("failed: Exception in thread \"main\" " + chain(t));
        System.exit(1);
    }

    private static String chain(Throwable t) {
        StringBuilder b = new StringBuilder(String.valueOf(t));
        Throwable c = t.getCause();
        for (int depth = 0; c != null && depth < 10; depth++, c = c.getCause()) {
            b.append(" Caused by: ").append(c);
        }
        return b.toString();
    }

    private static int startupFailureCode() {
        try {
            java.lang.reflect.Field f = Class.forName(RUNTIME + "ClusterEntrypoint")
                    .getDeclaredField("STARTUP_FAILURE_RETURN_CODE");
            f.setAccessible(true);
            return f.getInt(null);
        } catch (ReflectiveOperationException | RuntimeException e) {
            return 1;
        }
    }

    private static void fail(String line) {
        fail(line, startupFailureCode());
    }

    private static void fail(String line, int code) {
        result("failed: " + line);
        System.exit(code);
    }

    private static void ok(String simpleName, String parsed, Object conf, String prefix, String more) {
        String line = "ok: " + simpleName + ".main: " + parsed + "; configuration loaded: "
                + memoryOf(conf, prefix) + more;
        result(line);
        System.out.println("ParseArgs: " + line);
    }

    private static String describeParsed(Object parsed) {
        List<String> parts = new ArrayList<>();
        Object dir = call(parsed, "getConfigDir");
        parts.add("--configDir " + dir);
        Object props = call(parsed, "getDynamicProperties");
        if (props instanceof Properties) {
            parts.add(((Properties) props).size() + " -D properties");
        }
        Object host = call(parsed, "getHostname");
        if (host != null) {
            parts.add("--host " + host);
        }
        return String.join(", ", parts);
    }

    /** The PREFIX* entries (jobmanager.memory., taskmanager.memory.) of a Flink Configuration. */
    private static String memoryOf(Object conf, String prefix) {
        Object map = call(conf, "toMap");
        if (!(map instanceof Map)) {
            return "(no toMap)";
        }
        TreeMap<String, Object> memory = new TreeMap<>();
        for (Map.Entry<?, ?> e : ((Map<?, ?>) map).entrySet()) {
            String k = String.valueOf(e.getKey());
            if (k.startsWith(prefix)) {
                memory.put(k, e.getValue());
            }
        }
        return ((Map<?, ?>) map).size() + " keys, " + prefix + "*: " + memory;
    }

    private static Object call(Object target, String name) {
        for (Class<?> c = target.getClass(); c != null; c = c.getSuperclass()) {
            try {
                Method m = c.getDeclaredMethod(name);
                m.setAccessible(true);
                return m.invoke(target);
            } catch (NoSuchMethodException e) {
                // look in the superclass
            } catch (ReflectiveOperationException | RuntimeException e) {
                return null;
            }
        }
        return null;
    }

    private static Method staticMethodOrNull(String className, String name, int params) throws Exception {
        for (Class<?> c = Class.forName(className); c != null; c = c.getSuperclass()) {
            for (Method m : c.getDeclaredMethods()) {
                if (m.getName().equals(name) && m.getParameterCount() == params
                        && Modifier.isStatic(m.getModifiers())) {
                    m.setAccessible(true);
                    return m;
                }
            }
        }
        return null;
    }

    private static Method staticMethod(String className, String name, int params) throws Exception {
        Method m = staticMethodOrNull(className, name, params);
        if (m == null) {
            throw new NoSuchMethodException(className + "." + name + " with " + params + " parameters");
        }
        return m;
    }

    private static void result(String line) {
        try (PrintWriter w = new PrintWriter(new OutputStreamWriter(
                new FileOutputStream(resultFile), StandardCharsets.UTF_8))) {
            w.println(line.replace('\n', ' '));
        } catch (java.io.IOException e) {
            System.err.println("ParseArgs: cannot write " + resultFile + ": " + e);
        }
    }
}
