/*
 * What a Flink cluster entrypoint's main does with its arguments before the JobManager starts,
 * run with Flink's own classes: java-wrapper.sh (tests/real) runs this with the entrypoint's JVM
 * options and its class path (the release's flink-dist jar), before the JVM is started again
 * with -XX:+PrintFlagsFinal -version in place of the entrypoint.
 *
 *   java <the entrypoint's JVM options, this class's directory first on the class path>
 *        ParseArgs RESULT_FILE ENTRYPOINT_CLASS [the entrypoint's program arguments...]
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
 * Where it stops: before the application entrypoints look for the job's program
 * (getPackagedProgram: the job jar and class, which this suite's releases do not have; in 1.11
 * that comes before the configuration is loaded) and before the entrypoint object is built and
 * run. Other classes (TaskManager runners, YARN entrypoints) are not modelled: it says so and
 * exits 0.
 *
 * A failure is reported as the real main would end: the parser's failure as
 * parseParametersOrExit logs it ("Could not parse command line arguments [...]." with the
 * FlinkParseException and its cause), the usage Flink prints, exit 1
 * (ClusterEntrypoint.STARTUP_FAILURE_RETURN_CODE); an exception out of loading the
 * configuration as the JVM prints an uncaught one from main, exit 1. RESULT_FILE gets one line:
 * "ok: ...", "failed: ...", "not modelled: ..." (exit 0), or "error: ..." (exit 3) when this class
 * itself could not do it (a class or method it looks for is not in the line's jars).
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
                ok(simpleName, describeParsed(parsed), conf);
                break;
            }
            case CONTAINER + "StandaloneApplicationClusterEntryPoint": {
                Object parsed = parse(args, CONTAINER + "StandaloneApplicationClusterConfigurationParserFactory", simpleName);
                Object conf = load(() -> staticMethod(entrypoint, "loadConfigurationFromClusterConfig", 1)
                        .invoke(null, parsed));
                ok(simpleName, describeParsed(parsed) + " (the job's program is not looked for)", conf);
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
                ok(simpleName, parsedText + ", FLINK_CONF_DIR=" + System.getenv("FLINK_CONF_DIR"), conf);
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
            Throwable t = e.getCause();
            System.err.print("Exception in thread \"main\" ");
            t.printStackTrace();
            System.err.flush();
            fail("Exception in thread \"main\" " + chain(t));
            return null;
        }
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
        result("failed: " + line);
        System.exit(startupFailureCode());
    }

    private static void ok(String simpleName, String parsed, Object conf) {
        String line = "ok: " + simpleName + ".main: " + parsed + "; configuration loaded: " + memoryOf(conf);
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

    /** The jobmanager.memory.* entries of a Flink Configuration (all of them are few). */
    private static String memoryOf(Object conf) {
        Object map = call(conf, "toMap");
        if (!(map instanceof Map)) {
            return "(no toMap)";
        }
        TreeMap<String, Object> memory = new TreeMap<>();
        for (Map.Entry<?, ?> e : ((Map<?, ?>) map).entrySet()) {
            String k = String.valueOf(e.getKey());
            if (k.startsWith("jobmanager.memory.")) {
                memory.put(k, e.getValue());
            }
        }
        return ((Map<?, ?>) map).size() + " keys, jobmanager.memory.*: " + memory;
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
