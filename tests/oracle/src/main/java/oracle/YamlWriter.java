package oracle;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import java.util.regex.Pattern;

/**
 * Writes a standard-YAML config.yaml (Flink 1.19+) for a list of settings: keys flat
 * ({@code jobmanager.memory.process.size: 1g}), nested ({@code jobmanager: memory: process: size:}),
 * or a mix, grouped as YAML requires; values as plain, quoted or typed scalars; comments, blank
 * lines and document markers; and, rarely, documents Flink rejects (duplicate keys, nulls,
 * non-mapping documents, tab indentation). A RAW value that starts with a newline is a block
 * sequence, written below its key.
 */
final class YamlWriter {
    private final Random r;
    private int indent;

    /** A mapping node: ordered children, each {segment, Node or Gen.Val}. */
    private static final class Node {
        final List<Object[]> children = new ArrayList<>();

        Object get(String seg) {
            for (Object[] c : children) {
                if (c[0].equals(seg)) {
                    return c[1];
                }
            }
            return null;
        }
    }

    YamlWriter(Random r) {
        this.r = r;
    }

    private boolean chance(double p) {
        return r.nextDouble() < p;
    }

    @SafeVarargs
    private final <T> T pick(T... xs) {
        return xs[r.nextInt(xs.length)];
    }

    /** Core-schema scalars that are not strings, and text that cannot be a plain scalar. */
    private static final Pattern NON_STRING = Pattern.compile(
        "null|Null|NULL|~|true|True|TRUE|false|False|FALSE|[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+"
            + "|[-+]?(\\.[0-9]+|[0-9]+(\\.[0-9]*)?)([eE][-+]?[0-9]+)?|[-+]?\\.(inf|Inf|INF)|\\.(nan|NaN|NAN)");

    static boolean plainSafe(String s) {
        if (s.isEmpty() || NON_STRING.matcher(s).matches()) {
            return false;
        }
        char first = s.charAt(0);
        char last = s.charAt(s.length() - 1);
        if (Character.isWhitespace(first) || Character.isWhitespace(last) || last == ':') {
            return false;
        }
        if ("?:,[]{}#&*!|>'\"%@`".indexOf(first) >= 0) {
            return false;
        }
        if (first == '-' && (s.length() == 1 || s.charAt(1) == ' ' || s.charAt(1) == '\t')) {
            return false;
        }
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            if (c < 0x20 && c != '\t' || c == 0x7f) {
                return false;
            }
        }
        return !s.contains(": ") && !s.contains(":\t") && !s.contains(" #") && !s.contains("\t#");
    }

    static String singleQuoted(String s) {
        return "'" + s.replace("'", "''") + "'";
    }

    static String doubleQuoted(String s) {
        StringBuilder b = new StringBuilder("\"");
        for (char c : s.toCharArray()) {
            switch (c) {
                case '"': b.append("\\\""); break;
                case '\\': b.append("\\\\"); break;
                case '\t': b.append("\\t"); break;
                case '\n': b.append("\\n"); break;
                case '\r': b.append("\\r"); break;
                default:
                    if (c < 0x20 || c == 0x7f) {
                        b.append(String.format("\\x%02x", (int) c));
                    } else {
                        b.append(c);
                    }
            }
        }
        return b.append('"').toString();
    }

    /** A scalar as YAML source. A STRING that plain style would misread is single-quoted. */
    private String scalar(Gen.Val v, boolean flow) {
        switch (v.form) {
            case RAW:
                return v.text;
            case SINGLE_QUOTED:
                return singleQuoted(v.text);
            case DOUBLE_QUOTED:
                return doubleQuoted(v.text);
            default:
                boolean plain = plainSafe(v.text) && !(flow && v.text.matches(".*[,\\[\\]{}].*"));
                return plain ? v.text : (chance(0.7) ? singleQuoted(v.text) : doubleQuoted(v.text));
        }
    }

    String write(List<Object[]> entries) {
        indent = pick(2, 2, 2, 4, 3);
        List<Object[]> list = new ArrayList<>(entries);
        maybeSpecialValue(list);
        maybeSameKeyTwice(list);

        int docKind = weighted(190, 6, 2, 1, 1); // block, flow, not a mapping, tabs, no space
        if (docKind == 1) {
            return flowDocument(list);
        }
        if (docKind == 2) {
            return pick("invalid\n", "- a\n- b\n", "just a string: with: colons\n", "[1, 2]\n", "42\n");
        }
        Node root = new Node();
        int mode = weighted(35, 35, 30); // flat, nested, mixed
        boolean duplicate = chance(0.02);
        for (Object[] e : list) {
            insert(root, (String) e[0], (Gen.Val) e[1], mode, duplicate);
        }
        StringBuilder b = new StringBuilder();
        if (chance(0.05)) {
            b.append(pick("---\n", "%YAML 1.2\n---\n", "--- # config\n"));
        }
        if (chance(0.2)) {
            b.append("# Flink configuration\n");
        }
        render(b, root, 0, docKind == 3 ? "\t" : null);
        if (docKind == 4 && !list.isEmpty()) {
            b.append(list.get(0)[0]).append(":").append(((Gen.Val) list.get(0)[1]).text).append('\n');
        }
        if (chance(0.02)) {
            b.append("...\n");
        }
        return b.toString();
    }

    private int weighted(int... weights) {
        int total = Arrays.stream(weights).sum();
        int x = r.nextInt(total);
        for (int i = 0; i < weights.length; i++) {
            x -= weights[i];
            if (x < 0) {
                return i;
            }
        }
        return weights.length - 1;
    }

    /** Rarely, one value becomes a YAML null, list, map, block scalar, tagged or anchored value. */
    private void maybeSpecialValue(List<Object[]> list) {
        if (list.isEmpty() || !chance(0.06)) {
            return;
        }
        int i = r.nextInt(list.size());
        Gen.Val v = (Gen.Val) list.get(i)[1];
        String plain = plainSafe(v.text) ? v.text : singleQuoted(v.text);
        String raw = pick("null", "~", "", "[" + plain + "]", "[]", "{}", "{a: 1}", "!!str 1024", "!!str " + plain,
            "&x " + plain, "|\n" + " ".repeat(8) + v.text.trim(), ">-\n" + " ".repeat(8) + v.text.trim(),
            "[" + plain + ", " + plain + "]", "!!float 1", "!!int '1024'");
        list.set(i, new Object[] {list.get(i)[0], new Gen.Val(raw, Gen.Form.RAW)});
    }

    /**
     * Sometimes a second entry for the same key, usually written through another path: Flink
     * flattens first, so the later one wins, and a null only fails the load if it is the last.
     */
    private void maybeSameKeyTwice(List<Object[]> list) {
        if (list.isEmpty() || !chance(0.06)) {
            return;
        }
        Object[] e = list.get(r.nextInt(list.size()));
        Gen.Val other = chance(0.3) ? new Gen.Val(pick("~", "null", ""), Gen.Form.RAW)
            : new Gen.Val(pick("64m", "1g", "0.5", "abc", "true"), Gen.Form.STRING);
        if (chance(0.7)) {
            list.add(0, new Object[] {e[0], other});
        } else {
            list.add(new Object[] {e[0], other});
        }
    }

    private void insert(Node root, String key, Gen.Val v, int mode, boolean allowDuplicate) {
        List<String> segs = split(key, mode);
        Node node = root;
        for (int i = 0; i < segs.size() - 1; i++) {
            Object child = node.get(segs.get(i));
            if (child == null) {
                Node n = new Node();
                node.children.add(new Object[] {segs.get(i), n});
                node = n;
            } else if (child instanceof Node) {
                node = (Node) child;
            } else {
                insertFlat(root, key, v, allowDuplicate); // a value already sits on this path
                return;
            }
        }
        String last = segs.get(segs.size() - 1);
        if (node.get(last) == null || allowDuplicate) {
            node.children.add(new Object[] {last, v});
        } else if (node != root || segs.size() > 1) {
            insertFlat(root, key, v, false);
        }
    }

    private void insertFlat(Node root, String key, Gen.Val v, boolean allowDuplicate) {
        if (root.get(key) == null || allowDuplicate) {
            root.children.add(new Object[] {key, v});
        }
    }

    private List<String> split(String key, int mode) {
        String[] parts = key.split("\\.");
        List<String> segs = new ArrayList<>();
        if (mode == 0) {
            segs.add(key);
            return segs;
        }
        StringBuilder cur = new StringBuilder(parts[0]);
        for (int i = 1; i < parts.length; i++) {
            if (mode == 1 || r.nextBoolean()) {
                segs.add(cur.toString());
                cur.setLength(0);
                cur.append(parts[i]);
            } else {
                cur.append('.').append(parts[i]);
            }
        }
        segs.add(cur.toString());
        return segs;
    }

    private void render(StringBuilder b, Node node, int level, String tabIndent) {
        String pad = tabIndent != null && level > 0 ? tabIndent.repeat(level) : " ".repeat(level * indent);
        for (Object[] c : node.children) {
            if (chance(0.08)) {
                b.append(chance(0.5) ? pad : "").append(pick("# comment", "#", "# jobmanager.memory.process.size: 1g"))
                    .append('\n');
            }
            if (chance(0.05)) {
                b.append('\n');
            }
            b.append(pad).append((String) c[0]).append(':');
            if (c[1] instanceof Node) {
                if (chance(0.05)) {
                    b.append(" # section");
                }
                b.append('\n');
                render(b, (Node) c[1], level + 1, tabIndent);
            } else {
                Gen.Val v = (Gen.Val) c[1];
                String s = scalar(v, false);
                if (v.form == Gen.Form.RAW && s.startsWith("\n")) {
                    // A block sequence (TmGen's lists, "\n- a\n- b"): its items indented below the key.
                    for (String item : s.substring(1).split("\n", -1)) {
                        b.append('\n').append(pad).append(" ".repeat(indent)).append(item);
                    }
                    b.append('\n');
                    continue;
                }
                if (s.startsWith("|") || s.startsWith(">")) {
                    // Block scalar: its content lines indented below this key.
                    String[] lines = s.split("\n", -1);
                    b.append(' ').append(lines[0]).append('\n');
                    for (int i = 1; i < lines.length; i++) {
                        b.append(pad).append(lines[i]).append('\n');
                    }
                    continue;
                }
                if (!s.isEmpty()) {
                    b.append(chance(0.05) ? "   " : " ").append(s);
                    if (chance(0.05) && !s.endsWith("\\")) {
                        b.append(pick(" # comment", "  #c"));
                    }
                }
                b.append('\n');
            }
        }
    }

    private String flowDocument(List<Object[]> list) {
        StringBuilder b = new StringBuilder("{");
        boolean multiLine = chance(0.5);
        for (int i = 0; i < list.size(); i++) {
            Gen.Val v = (Gen.Val) list.get(i)[1];
            if (v.form == Gen.Form.RAW && (v.text.isEmpty() || v.text.contains("\n") || v.text.startsWith("&"))) {
                v = new Gen.Val(v.text.trim(), Gen.Form.SINGLE_QUOTED);
            }
            b.append(i == 0 ? "" : ",").append(multiLine ? "\n  " : (i == 0 ? "" : " "));
            b.append(list.get(i)[0]).append(": ").append(scalar(v, true));
        }
        b.append(multiLine ? "\n}\n" : "}\n");
        return b.toString();
    }
}
