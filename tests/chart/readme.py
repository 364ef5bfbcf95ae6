#!/usr/bin/env python3
"""The values table of charts/flink-memory-webhook/README.md, generated from values.schema.json
(descriptions, types, allowed values) and values.yaml (defaults).

    python3 tests/chart/readme.py --write   # make chart-docs: rewrite the table in place
    python3 tests/chart/readme.py --check   # exit 1 if the README's table is not current
"""
import json
import os
import sys

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CHART = os.path.join(ROOT, "charts", "flink-memory-webhook")
README = os.path.join(CHART, "README.md")
# Objects shown as one row (selectors and references), not key by key.
WHOLE = {"objectSelector", "namespaceSelector", "workloadObjectSelector", "issuerRef"}
START, END = "<!-- values:start -->", "<!-- values:end -->"


def leaves(schema, values, prefix=""):
    """(key, schema, default) for every documented key, depth first in schema order. Objects
    whose properties are listed are expanded; free-form objects and arrays are one row."""
    for key, sub in schema.get("properties", {}).items():
        path = f"{prefix}{key}"
        default = values.get(key) if isinstance(values, dict) else None
        if sub.get("type") == "object" and "properties" in sub and key not in WHOLE:
            yield from leaves(sub, default or {}, path + ".")
        else:
            yield path, sub, default


def cell(text):
    return str(text).replace("|", "\\|").replace("\n", " ")


def show_default(value):
    if value is None:
        return ""
    if isinstance(value, str):
        return "`\"\"`" if value == "" else f"`{value}`"
    text = json.dumps(value, separators=(",", ":"))
    if len(text) > 60:
        return "see values.yaml"
    return f"`{text}`"


def table():
    with open(os.path.join(CHART, "values.schema.json")) as f:
        schema = json.load(f)
    with open(os.path.join(CHART, "values.yaml")) as f:
        values = yaml.safe_load(f)
    rows = ["| key | default | description |", "| --- | --- | --- |"]
    for key, sub, default in leaves(schema, values):
        desc = sub.get("description", "")
        if "enum" in sub:
            desc += " One of: " + ", ".join(f"`{e}`" for e in sub["enum"] if not isinstance(e, bool)) + "."
        rows.append(f"| `{key}` | {cell(show_default(default))} | {cell(desc)} |")
    return "\n".join(rows)


def render(text):
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{START}\n{table()}\n{END}{tail}"


def main():
    with open(README) as f:
        text = f.read()
    new = render(text)
    if "--write" in sys.argv:
        with open(README, "w") as f:
            f.write(new)
        print("charts/flink-memory-webhook/README.md: values table rewritten")
        return 0
    if new != text:
        print("charts/flink-memory-webhook/README.md: the values table is stale; run make chart-docs")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
