#!/usr/bin/python3
"""sql_summary.py: the SQL Odoo issued on each approval path of the Odoo tier.

  sql_summary.py POSTGRESQL.json DBNAME FULL_OUT SUMMARY_OUT

Reads the server's jsonlog (log_statement = 'mod' for Odoo's role), keeps the
lines of DBNAME whose application_name is "rf:PATH:PHASE" (test/odoo/flows.py
sets it before each phase of each path), and prints per path and phase, in
order, which INSERT / UPDATE / DELETE touched stock_quant, stock_move,
sale_order, purchase_order or account_move with which columns, and the errors
(SQLSTATE, message, detail, the refused statement).  Every logged statement of
those phases, verbatim, goes to FULL_OUT; the summary of every phase to
SUMMARY_OUT, and of the "attempt" phases (the state change tried without
approval) to stdout.  Standard library only.
"""
import collections
import json
import re
import sys

TABLES = ("stock_quant", "stock_move", "sale_order", "purchase_order", "account_move")
HEAD = re.compile(r'^\s*(INSERT\s+INTO|UPDATE|DELETE\s+FROM)\s+"?(\w+)"?', re.I | re.S)


def split_top(s, sep=","):
    """Splits s at sep outside parentheses and quotes."""
    out, depth, cur, quote = [], 0, [], None
    for ch in s:
        if quote:
            cur.append(ch)
            if ch == quote:
                quote = None
            continue
        if ch in "'\"":
            quote = ch
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif ch == sep and depth == 0:
            out.append("".join(cur))
            cur = []
            continue
        cur.append(ch)
    out.append("".join(cur))
    return out


def find_top(s, word):
    """Index of the keyword word (e.g. ' WHERE ') outside parentheses and quotes, or -1."""
    depth, quote, up, w = 0, None, s.upper(), word.upper()
    for i, ch in enumerate(s):
        if quote:
            if ch == quote:
                quote = None
            continue
        if ch in "'\"":
            quote = ch
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif depth == 0 and up.startswith(w, i):
            return i
    return -1


def summarize(sql):
    """(table, one-line summary) of an INSERT/UPDATE/DELETE, or (None, None)."""
    m = HEAD.match(sql)
    if not m:
        return None, None
    verb, table = m.group(1).split()[0].upper(), m.group(2)
    rest = " ".join(sql[m.end():].split())
    if verb == "INSERT":
        cols = re.match(r'\s*\(([^)]*)\)', rest)
        names = [c.strip().strip('"') for c in cols.group(1).split(",")] if cols else []
        rows = rest.count("), (") + 1 if " VALUES " in rest.upper() else "?"
        return table, "INSERT %s (%s) -- %s row(s)" % (table, ", ".join(names), rows)
    if verb == "UPDATE":
        body = rest[rest.upper().find("SET ") + 4:] if "SET " in rest.upper() else rest
        end = min([i for i in (find_top(body, " FROM "), find_top(body, " WHERE ")) if i >= 0] or [len(body)])
        names = [a.split("=", 1)[0].strip().strip('"') for a in split_top(body[:end])]
        where = body[end:].strip()
        return table, "UPDATE %s SET %s  %s" % (table, ", ".join(names), where[:110] + ("..." if len(where) > 110 else ""))
    where = rest.strip()
    return table, "DELETE FROM %s %s" % (table, where[:110])


def main(log_path, dbname, full_out, summary_out):
    phases = collections.OrderedDict()   # (path, phase) -> [(kind, text)]
    full = collections.OrderedDict()
    with open(log_path, errors="replace") as f:
        for line in f:
            try:
                e = json.loads(line)
            except ValueError:
                continue
            app = e.get("application_name") or ""
            if e.get("dbname") != dbname or not app.startswith("rf:"):
                continue
            _, path, phase = (app.split(":", 2) + ["", ""])[:3]
            key = (path, phase)
            msg = e.get("message") or ""
            if msg.startswith("statement: "):
                sql = msg[len("statement: "):]
                full.setdefault(key, []).append(sql)
                table, summary = summarize(sql)
                if table in TABLES:
                    phases.setdefault(key, []).append(summary)
            elif e.get("error_severity") in ("ERROR", "FATAL"):
                stmt = e.get("statement") or ""
                _, where = summarize(stmt)
                text = "ERROR %s: %s%s  <- %s" % (e.get("state_code"), msg,
                                                  (" | DETAIL: " + e["detail"]) if e.get("detail") else "",
                                                  where or " ".join(stmt.split())[:120])
                phases.setdefault(key, []).append(text)
                full.setdefault(key, []).append("-- " + text)
    with open(full_out, "w") as f:
        for (path, phase), stmts in full.items():
            f.write("==== %s / %s\n" % (path, phase))
            for s in stmts:
                f.write(s.rstrip() + ";\n")
    with open(summary_out, "w") as f:
        f.write(render(phases, None))
    sys.stdout.write(render(phases, "attempt"))
    if not phases:
        print("no statement of Odoo's role on %s was logged with an rf: application_name" % dbname)


def render(phases, only):
    """The summary as text: path, phase, statements (consecutive repeats counted)."""
    out, last_path = [], None
    for (path, phase), items in phases.items():
        if only and phase != only:
            continue
        if path != last_path:
            out.append("%s:" % path)
            last_path = path
        out.append("  %s:" % phase)
        prev, n = None, 0
        for it in items + [None]:
            if it == prev:
                n += 1
                continue
            if prev is not None:
                out.append("    %s%s" % (prev, "  (x%d)" % n if n > 1 else ""))
            prev, n = it, 1
    return "\n".join(out) + ("\n" if out else "")


if __name__ == "__main__":
    main(*sys.argv[1:5])
