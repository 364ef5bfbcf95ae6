package oracle;

import java.util.Random;

/**
 * Conf dirs holding both files. Flink 1.19 and 1.20 read flink-conf.yaml when the conf dir has
 * one and config.yaml otherwise (GlobalConfiguration.loadConfiguration); 1.18 and older read only
 * flink-conf.yaml and 2.x only config.yaml, so a file of the other name left in the dir must change
 * nothing there. A share of the generated cases gets the other file beside its own, written by
 * the harness into the same conf dir Flink's loader reads; the C runner replays those cases
 * through the built CLI (flink-memory resolve --conf-dir), which has to choose the same file.
 *
 * <p>The choice and the text come from their own Random, seeded from (seed, id, line), so the
 * generators' cases are unchanged: a case with a second file is the same case plus that file.
 */
final class SecondFile {
    private static final long SALT = 0x2C1B3F5E9A7D4811L;

    private SecondFile() {}

    /** Adds a second file to `c` for a share of the cases: 4% in 1.19/1.20, 0.5% elsewhere. */
    static void maybeAdd(Case c, long seed, int id, int major, int minor) {
        Random r = new Random(Spelling.mix(seed ^ SALT ^ (major * 100L + minor), id));
        boolean both = major == 1 && minor >= 19;
        if (r.nextDouble() >= (both ? 0.04 : 0.005)) {
            return;
        }
        String own = c.fileName != null ? c.fileName : Case.fileNameFor(major, minor);
        c.secondName = own.equals("config.yaml") ? "flink-conf.yaml" : "config.yaml";
        c.secondText = text(r, c, c.secondName.equals("config.yaml"));
    }

    /**
     * What the second file says: nothing, other sizes for both roles, a value Flink refuses, a
     * file Flink's YAML loader rejects, or the case's own text under the other name (so the other
     * parser reads it, where it is read at all).
     */
    private static String text(Random r, Case c, boolean yaml) {
        long jm = 1024 + r.nextInt(3072), tm = 1024 + r.nextInt(3072);
        switch (r.nextInt(5)) {
            case 0:
                return "";
            case 1:
                return yaml
                    ? "jobmanager:\n  memory:\n    process.size: " + jm + "m\n"
                        + "taskmanager:\n  memory:\n    process.size: " + tm + "m\n"
                    : "jobmanager.memory.process.size: " + jm + "m\ntaskmanager.memory.process.size: " + tm + "m\n";
            case 2:
                return yaml
                    ? "jobmanager.memory.process.size: 1x\ntaskmanager.memory.process.size: 1x\n"
                    : "# left over\njobmanager.memory.process.size: 1x\ntaskmanager.memory.process.size: 1x\n";
            case 3:
                return yaml ? "jobmanager.memory.process.size: [" + jm + "m\n" : "junk line\n\tkey\n";
            default:
                return c.fileText != null ? c.fileText : "";
        }
    }
}
