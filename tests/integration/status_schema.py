"""Checker for runnerd's /status document (docs/status.md, schema 1).

Usage from a test:
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import status_schema
    status_schema.validate(json.loads(body))   # raises ValueError naming the bad key

Standard library only. Unknown extra keys are allowed (clients must ignore them);
every documented key must be present with its documented type.
"""

INT = "int"
NUM = "number"
STR = "string"
BOOL = "bool"

STATES = ("starting", "running", "reloading", "stopping")
RUNNER_STATES = ("starting", "idle", "busy", "stopping")
ARCHES = ("x64", "arm64", "arm")
WEBHOOK_RESULTS = ("accepted", "duplicate", "ping", "ignored", "bad_signature",
                   "malformed", "too_large", "disabled")
HTTP_CLASSES = ("2xx", "3xx", "4xx", "5xx", "error")


def _is(v, kind):
    if kind == INT:
        return isinstance(v, int) and not isinstance(v, bool)
    if kind == NUM:
        return isinstance(v, (int, float)) and not isinstance(v, bool)
    if kind == STR:
        return isinstance(v, str)
    if kind == BOOL:
        return isinstance(v, bool)
    raise AssertionError(kind)


def _fail(path, msg):
    raise ValueError("/status %s: %s" % (path, msg))


def _obj(v, path):
    if not isinstance(v, dict):
        _fail(path, "want an object, got %r" % (v,))
    return v


def _key(o, k, kind, path, nullable=False, nonneg=False):
    if k not in o:
        _fail(path + "." + k, "missing")
    v = o[k]
    if v is None:
        if not nullable:
            _fail(path + "." + k, "is null")
        return v
    if not _is(v, kind):
        _fail(path + "." + k, "want %s, got %r" % (kind, v))
    if nonneg and v < 0:
        _fail(path + "." + k, "negative: %r" % (v,))
    return v


def _enum(o, k, values, path):
    v = _key(o, k, STR, path)
    if v not in values:
        _fail(path + "." + k, "%r not one of %s" % (v, ", ".join(values)))
    return v


def _strlist(o, k, path, nullable=False):
    if k not in o:
        _fail(path + "." + k, "missing")
    v = o[k]
    if v is None and nullable:
        return v
    if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
        _fail(path + "." + k, "want an array of strings, got %r" % (v,))
    return v


def _counts(o, k, keys, path):
    c = _obj(o.get(k), path + "." + k) if k in o else _fail(path + "." + k, "missing")
    for name in keys:
        _key(c, name, INT, path + "." + k, nonneg=True)
    return c


def validate_pool(p, path):
    _obj(p, path)
    _key(p, "name", STR, path)
    _strlist(p, "labels", path)
    _enum(p, "arch", ARCHES, path)
    _key(p, "emulated", BOOL, path)
    for k in ("max", "min_idle", "running", "starting", "idle", "busy", "stopping", "queued",
              "starts", "failures"):
        _key(p, k, INT, path, nonneg=True)
    if p["running"] != p["starting"] + p["idle"] + p["busy"] + p["stopping"]:
        _fail(path + ".running", "%d != starting+idle+busy+stopping" % p["running"])
    _key(p, "degraded", BOOL, path)
    _key(p, "backoff_until", INT, path, nullable=True)
    _key(p, "draining", BOOL, path)


def validate_runner(r, path):
    _obj(r, path)
    for k in ("name", "pool", "scope"):
        _key(r, k, STR, path)
    if not (r["scope"].startswith("repos/") or r["scope"].startswith("orgs/")):
        _fail(path + ".scope", "want repos/OWNER/REPO or orgs/ORG, got %r" % r["scope"])
    _enum(r, "state", RUNNER_STATES, path)
    _key(r, "age_s", INT, path, nonneg=True)
    _key(r, "runner_id", INT, path, nullable=True)
    _key(r, "job_id", INT, path, nullable=True)
    _key(r, "adopted", BOOL, path)


def validate_target(t, path):
    _obj(t, path)
    _key(t, "scope", STR, path)
    kind = _enum(t, "kind", ("repo", "org"), path)
    want = "repos/" if kind == "repo" else "orgs/"
    if not t["scope"].startswith(want):
        _fail(path + ".scope", "%r does not match kind %r" % (t["scope"], kind))
    _strlist(t, "repos", path, nullable=True)
    if kind == "repo" and t["repos"] is not None:
        _fail(path + ".repos", "must be null for a repo target")
    _strlist(t, "pools", path)
    _key(t, "last_poll", INT, path, nullable=True)
    _key(t, "last_error", STR, path, nullable=True)
    _key(t, "backoff_until", INT, path, nullable=True)
    _key(t, "queued", INT, path, nonneg=True)


def validate(doc):
    """Raise ValueError unless doc (parsed JSON) follows docs/status.md schema 1."""
    _obj(doc, "")
    if _key(doc, "schema", INT, "") != 1:
        _fail(".schema", "want 1, got %r" % doc["schema"])
    for k in ("version", "instance"):
        _key(doc, k, STR, "")
    _key(doc, "now", INT, "", nonneg=True)
    _key(doc, "started_at", INT, "", nonneg=True)
    _enum(doc, "state", STATES, "")

    c = _obj(doc.get("config"), ".config")
    _key(c, "path", STR, ".config")
    _key(c, "loaded_at", INT, ".config", nonneg=True)
    _key(c, "reloads_ok", INT, ".config", nonneg=True)
    _key(c, "reloads_failed", INT, ".config", nonneg=True)
    _key(c, "last_error", STR, ".config", nullable=True)

    h = _obj(doc.get("host"), ".host")
    _enum(h, "arch", ARCHES, ".host")
    for k in ("cpus", "cpus_used"):
        _key(h, k, NUM, ".host", nonneg=True)
    for k in ("memory", "memory_used", "gpus", "gpus_used", "max_runners", "runners"):
        _key(h, k, INT, ".host", nonneg=True)

    j = _obj(doc.get("jobs"), ".jobs")
    _key(j, "queued", INT, ".jobs", nonneg=True)
    _key(j, "unmatched", INT, ".jobs", nonneg=True)
    if j["unmatched"] > j["queued"]:
        _fail(".jobs.unmatched", "more than queued")

    g = _obj(doc.get("github"), ".github")
    _key(g, "api_url", STR, ".github")
    _enum(g, "auth", ("token", "app"), ".github")
    rl = _obj(g.get("rate_limit"), ".github.rate_limit")
    for k in ("limit", "remaining", "reset"):
        _key(rl, k, INT, ".github.rate_limit", nullable=True, nonneg=True)
    _counts(g, "requests", HTTP_CLASSES, ".github")
    _key(g, "budget_per_hour", INT, ".github", nonneg=True)

    w = _obj(doc.get("webhook"), ".webhook")
    _key(w, "enabled", BOOL, ".webhook")
    _counts(w, "deliveries", WEBHOOK_RESULTS, ".webhook")
    _key(w, "last_delivery", INT, ".webhook", nullable=True)

    for k, fn in (("pools", validate_pool), ("runners", validate_runner),
                  ("targets", validate_target)):
        arr = doc.get(k)
        if not isinstance(arr, list):
            _fail("." + k, "want an array, got %r" % (arr,))
        for i, item in enumerate(arr):
            fn(item, ".%s[%d]" % (k, i))

    pools = {p["name"] for p in doc["pools"]}
    for i, r in enumerate(doc["runners"]):
        if r["pool"] not in pools:
            _fail(".runners[%d].pool" % i, "%r is not in .pools" % r["pool"])
    if h["runners"] != len(doc["runners"]):
        _fail(".host.runners", "%d != len(runners) %d" % (h["runners"], len(doc["runners"])))
    return True
