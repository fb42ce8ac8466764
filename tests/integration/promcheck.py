"""Prometheus text exposition (format 0.0.4) checker for runnerd's /metrics (stdlib only).

    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import promcheck
    fams = promcheck.parse(text)          # raises ValueError on the first violation
    promcheck.value(fams, 'runnerd_runners', pool='linux-x64', state='busy')  # -> float

Checks what a scraper enforces: metric and label name syntax, label value escapes
(only \\\\ \\" \\n), a HELP and TYPE line before a family's samples and at most one of
each, no duplicate series, values that parse as floats, counters >= 0, histogram
buckets with increasing `le`, cumulative counts, a `+Inf` bucket equal to `_count`,
and a `_sum`. It also checks that every family documented in docs/metrics.md is
named runnerd_*.
"""
import math
import re

NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
LABEL = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
TYPES = ("counter", "gauge", "histogram", "summary", "untyped")


class Family:
    def __init__(self, name):
        self.name = name
        self.help = None
        self.type = None
        self.samples = []  # (sample name, labels dict, value)


def _value(s, line):
    if s in ("+Inf", "Inf"):
        return math.inf
    if s == "-Inf":
        return -math.inf
    if s == "NaN":
        return math.nan
    try:
        return float(s)
    except ValueError:
        raise ValueError("bad value %r in %r" % (s, line))


def _labels(s, i, line):
    """Parse {a="b",...} starting at s[i] == '{'; return (dict, index after '}')."""
    labels = {}
    i += 1
    while True:
        if s[i] == "}":
            return labels, i + 1
        m = LABEL.match(s, i)
        if not m:
            raise ValueError("bad label name in %r" % line)
        name = m.group(0)
        i = m.end()
        if s[i:i + 2] != '="':
            raise ValueError("label %s without =\" in %r" % (name, line))
        i += 2
        out = []
        while True:
            if i >= len(s):
                raise ValueError("unterminated label value in %r" % line)
            c = s[i]
            if c == "\\":
                nxt = s[i + 1:i + 2]
                if nxt not in ("\\", '"', "n"):
                    raise ValueError("bad escape \\%s in %r" % (nxt, line))
                out.append("\n" if nxt == "n" else nxt)
                i += 2
                continue
            if c == '"':
                i += 1
                break
            out.append(c)
            i += 1
        if name in labels:
            raise ValueError("label %s twice in %r" % (name, line))
        labels[name] = "".join(out)
        if s[i] == ",":
            i += 1
        elif s[i] != "}":
            raise ValueError("expected , or } in %r" % line)


def parse(text):
    """Parse and validate; returns {family name: Family}."""
    if not text.endswith("\n"):
        raise ValueError("exposition does not end with a newline")
    fams = {}
    series = set()
    for line in text.split("\n")[:-1]:
        if line.startswith("#"):
            parts = line.split(None, 3)
            if len(parts) >= 3 and parts[1] in ("HELP", "TYPE"):
                name = parts[2]
                if not NAME.fullmatch(name):
                    raise ValueError("bad metric name in %r" % line)
                f = fams.setdefault(name, Family(name))
                if parts[1] == "HELP":
                    if f.help is not None:
                        raise ValueError("second HELP for %s" % name)
                    f.help = parts[3] if len(parts) > 3 else ""
                else:
                    t = parts[3] if len(parts) > 3 else ""
                    if t not in TYPES:
                        raise ValueError("bad TYPE %r for %s" % (t, name))
                    if f.type is not None or f.samples:
                        raise ValueError("TYPE for %s repeated or after its samples" % name)
                    f.type = t
            continue
        if not line:
            continue
        m = NAME.match(line)
        if not m:
            raise ValueError("bad sample line %r" % line)
        sname = m.group(0)
        i = m.end()
        labels = {}
        if i < len(line) and line[i] == "{":
            labels, i = _labels(line, i, line)
        if line[i:i + 1] != " ":
            raise ValueError("no space before the value in %r" % line)
        rest = line[i + 1:].split(" ")
        if len(rest) not in (1, 2):
            raise ValueError("bad value/timestamp in %r" % line)
        v = _value(rest[0], line)
        key = (sname, tuple(sorted(labels.items())))
        if key in series:
            raise ValueError("duplicate series %r" % line)
        series.add(key)
        fam = fams.get(sname)
        suffix = ""
        if fam is None:
            for sfx in ("_bucket", "_sum", "_count"):
                if sname.endswith(sfx) and sname[:-len(sfx)] in fams:
                    fam = fams[sname[:-len(sfx)]]
                    suffix = sfx
                    if fam.type not in ("histogram", "summary"):
                        fam = None
                    break
        if fam is None or fam.type is None or fam.help is None:
            raise ValueError("sample %s without HELP and TYPE before it" % sname)
        if fam.type == "histogram" and not suffix:
            raise ValueError("histogram sample %s without _bucket/_sum/_count" % sname)
        if fam.type == "counter" and v < 0:
            raise ValueError("negative counter %r" % line)
        fam.samples.append((sname, labels, v))

    for f in fams.values():
        if f.type is None:
            raise ValueError("HELP without TYPE for %s" % f.name)
        if f.type == "histogram":
            _check_histogram(f)
    return fams


def _check_histogram(f):
    groups = {}
    for sname, labels, v in f.samples:
        rest = tuple(sorted((k, x) for k, x in labels.items() if k != "le"))
        g = groups.setdefault(rest, {"buckets": [], "sum": None, "count": None})
        if sname.endswith("_bucket"):
            if "le" not in labels:
                raise ValueError("%s bucket without le" % f.name)
            g["buckets"].append((_value(labels["le"], labels["le"]), v))
        elif sname.endswith("_sum"):
            g["sum"] = v
        else:
            g["count"] = v
    for rest, g in groups.items():
        les = [b[0] for b in g["buckets"]]
        if les != sorted(les) or len(set(les)) != len(les):
            raise ValueError("%s buckets not in increasing le order" % f.name)
        counts = [b[1] for b in g["buckets"]]
        if any(b < a for a, b in zip(counts, counts[1:])):
            raise ValueError("%s buckets not cumulative" % f.name)
        if not les or les[-1] != math.inf:
            raise ValueError("%s has no +Inf bucket" % f.name)
        if g["count"] is None or g["sum"] is None:
            raise ValueError("%s lacks _count or _sum" % f.name)
        if counts[-1] != g["count"]:
            raise ValueError("%s +Inf bucket %s != _count %s" % (f.name, counts[-1], g["count"]))


def value(fams, name, **labels):
    """The value of the sample `name` with exactly these labels (KeyError when absent)."""
    base = name
    for sfx in ("_bucket", "_sum", "_count"):
        if name not in fams and name.endswith(sfx):
            base = name[:-len(sfx)]
    f = fams.get(base)
    if f is not None:
        for sname, l, v in f.samples:
            if sname == name and l == labels:
                return v
    raise KeyError("%s%r not in the exposition" % (name, labels))
