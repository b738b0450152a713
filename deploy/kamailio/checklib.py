#!/usr/bin/env python3
"""Helpers for deploy/kamailio/check (standard library only).

    checklib.py freeport udp|tcp              a free port on 127.0.0.1
    checklib.py wait-http URL SECONDS         until GET URL answers 200
    checklib.py sip-ping HOST PORT SECONDS    until an OPTIONS gets a 200
    checklib.py load TIERLINE TIERS WORKDIR   reload the tier file; note what it refused
    checklib.py plan WORKDIR PHASE KIND N     write the SIPp -inf file of a phase
    checklib.py prefill TIERLINE WORKDIR      set up the overflow phase (queue "small")
    checklib.py prefill-offer TIERLINE WORKDIR   set up the offer phase (queue "offer")
    checklib.py agents TIERLINE WORKDIR PHASE SECONDS   answer the phase's "agent" calls
    checklib.py verify TIERLINE WORKDIR PHASE KIND [--bound-ms MS]
    checklib.py verify-early-cancel WORKDIR PHASE FAKELOG
    checklib.py fake MODE PORT                a broken Tierline: hung | 503 | garbage | nothttp | slow
    checklib.py latency WORKDIR PHASE         percentiles of a phase (JSON)
    checklib.py summary WORKDIR               the closing table

Phases are run by `check`; each writes WORKDIR/PHASE.inf (the calls), and SIPp writes
WORKDIR/PHASE.acd.log (what the ACD received), PHASE.caller.log (calls that finished
at the caller's side), PHASE.rtt.csv (INVITE -> 180 times). Call-IDs are
"tlc-PHASE-N" (SIPp -cid_str), N being the 1-based line of the -inf file (SEQUENTIAL).
"""

import contextlib
import csv
import http.client
import json
import math
import os
import re
import socket
import sys
import threading
import time
import urllib.parse

TIERS = ("vip", "mid", "standard", "blacklisted")
CALLER_RE = re.compile(r"^\+?[0-9]{3,15}$")
# Tierline's own normalisation (SPEC "Caller numbers are normalised before look-up")
DROP = str.maketrans("", "", " -.()")


def normalise(raw):
    c = raw.strip().translate(DROP)
    if c.startswith("00"):
        c = "+" + c[2:]
    return c


def die(msg):
    print("check: " + msg, file=sys.stderr)
    sys.exit(1)


# -- HTTP ---------------------------------------------------------------------------
class Api:
    def __init__(self, base):
        u = urllib.parse.urlsplit(base)
        self.host, self.port = u.hostname, u.port or 80
        self.conn = None

    def req(self, method, path, body=None, ctype="application/json", timeout=10.0):
        data = None
        headers = {}
        if body is not None:
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
            headers["Content-Type"] = ctype
        for attempt in (1, 2):
            try:
                if self.conn is None:
                    self.conn = http.client.HTTPConnection(self.host, self.port, timeout=timeout)
                # the tokens `check` gave this Tierline (none when it runs open)
                token = os.environ.get("TIERLINE_ADMIN_TOKEN" if path.startswith("/admin") else "TIERLINE_API_TOKEN")
                if token:
                    headers["Authorization"] = "Bearer " + token
                self.conn.request(method, path, body=data, headers=headers)
                r = self.conn.getresponse()
                raw = r.read()
                try:
                    doc = json.loads(raw) if raw else None
                except ValueError:
                    doc = raw.decode("utf-8", "replace")
                return r.status, doc
            except (http.client.HTTPException, OSError):
                if self.conn is not None:
                    self.conn.close()
                self.conn = None
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")


# -- small commands -------------------------------------------------------------------
def cmd_freeport(kind):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM if kind == "udp" else socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    print(s.getsockname()[1])
    s.close()


def cmd_wait_http(url, seconds):
    end = time.monotonic() + float(seconds)
    u = urllib.parse.urlsplit(url)
    while time.monotonic() < end:
        try:
            c = http.client.HTTPConnection(u.hostname, u.port, timeout=1)
            c.request("GET", u.path or "/")
            if c.getresponse().status == 200:
                return
        except OSError:
            pass
        time.sleep(0.1)
    die(f"{url} did not answer within {seconds} s")


def cmd_sip_ping(host, port, seconds):
    end = time.monotonic() + float(seconds)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    lport = s.getsockname()[1]
    n = 0
    while time.monotonic() < end:
        n += 1
        pid = os.getpid()
        msg = (
            f"OPTIONS sip:{host}:{port} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{lport};branch=z9hG4bK-ping-{pid}-{n}\r\n"
            f"From: <sip:check@127.0.0.1>;tag=p{n}\r\nTo: <sip:{host}:{port}>\r\nCall-ID: ping-{pid}-{n}@check\r\n"
            f"CSeq: {n} OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
        )
        s.sendto(msg.encode(), (host, int(port)))
        s.settimeout(0.3)
        try:
            data = s.recv(65535)
            if data.startswith(b"SIP/2.0 200"):
                return
        except TimeoutError:
            pass
    die(f"no SIP answer from {host}:{port} within {seconds} s")


# -- the tier file and the plan -------------------------------------------------------
def read_tiers(path, refused_lines):
    """caller -> tier for the rows Tierline took (first row of a caller wins)."""
    table = {}
    with open(path, newline="", encoding="utf-8") as f:
        rows = csv.reader(f)
        header = next(rows, None)
        if header is None:
            die(f"{path} is empty")
        names = [h.strip().lower() for h in header]
        if "caller" not in names or "tier" not in names:
            die(f"{path}: the header needs caller and tier columns")
        ci, ti = names.index("caller"), names.index("tier")
        for row in rows:
            line = rows.line_num
            if line in refused_lines or not row or all(not x.strip() for x in row):
                continue
            if len(row) <= max(ci, ti):
                continue
            caller, tier = normalise(row[ci]), row[ti].strip().lower()
            if tier not in TIERS or not CALLER_RE.match(caller) or caller in table:
                continue
            table[caller] = tier
    return table


def cmd_load(base, tiers, work):
    api = Api(base)
    with open(tiers, "rb") as f:
        data = f.read()
    st, doc = api.req("POST", "/admin/tiers/reload", data, ctype="text/csv", timeout=300)
    if st != 200 or not isinstance(doc, dict) or not doc.get("swapped"):
        die(f"tier reload refused ({st}): {doc}")
    refused = {r["line"] for r in doc.get("rejected", [])}
    table = read_tiers(tiers, refused)
    if doc.get("rejected_count", 0) > len(doc.get("rejected", [])):
        print("check: note: more rows refused than listed; callers of unlisted refused rows may be misjudged")
    if not table:
        die(f"no usable caller in {tiers}")
    with open(os.path.join(work, "table.json"), "w") as f:
        json.dump(table, f)
    print(
        f"tiers: {doc['loaded']} loaded (version {doc['version']}), {doc['rejected_count']} refused; "
        f"{len(table)} callers usable for calls"
    )


def unknown_callers(table, count):
    out, n = [], 0
    while len(out) < count:
        n += 1
        c = f"+1999{n:08d}"
        if c not in table:
            out.append(c)
    return out


def cmd_plan(work, phase, kind, n):
    """kind: routed (main phase), fallback (any caller, short calls)."""
    n = int(n)
    with open(os.path.join(work, "table.json")) as f:
        table = json.load(f)
    # every caller of the file (up to 400), then ~1 unknown caller for 5 known ones
    known = sorted(table)[:400]
    unknown = unknown_callers(table, max(4, len(known) // 5))
    callers = [(c, table[c]) for c in known] + [(c, "standard") for c in unknown]
    lines = []
    for i in range(n):
        caller, tier = callers[i % len(callers)]
        if kind == "routed":
            # 20% hang up while ringing, 20% reach an agent, 60% hang up in the queue
            action = ("hold", "agent", "hold", "cancel", "hold", "hold", "agent", "hold", "cancel", "hold")[i % 10]
            expect = "waiting"
        else:
            action, expect = "hold", "unrouted"
        lines.append(f"{caller};{tier};{action};default;{expect}")
    with open(os.path.join(work, phase + ".inf"), "w") as f:
        f.write("SEQUENTIAL\n" + "\n".join(lines) + "\n")


# the overflow phase: queue "small" (max_waiting 2) is full; four callers of each tier
OVERFLOW_CALLERS = [
    ("+19980000001", "vip", "waiting"),
    ("+19980000002", "mid", "overflowed"),
    ("+19980000003", "standard", "overflowed"),
    ("+19980000004", "blacklisted", "overflowed"),
]


def cmd_prefill(base, work):
    api = Api(base)
    for caller, tier, _ in OVERFLOW_CALLERS:
        st, doc = api.req("PUT", "/admin/tiers/" + urllib.parse.quote(caller), {"tier": tier})
        if st != 200:
            die(f"PUT /admin/tiers/{caller}: {st} {doc}")
    for i in (1, 2):
        body = {"call_id": f"tlc-fill-{i}", "caller": f"+19970000000{i}", "queue": "small"}
        st, doc = api.req("POST", "/v1/calls", body)
        if st != 201 or doc.get("status") != "waiting":
            die(f"could not fill queue small: {st} {doc}")
    lines = ["{};{};hold;small;{}".format(*c) for c in OVERFLOW_CALLERS]
    with open(os.path.join(work, "overflow.inf"), "w") as f:
        f.write("SEQUENTIAL\n" + "\n".join(lines) + "\n")


# The offer phase (issue 16 item 3): queue "offer" has an AHT (one call answered and ended)
# and OFFER_AHEAD mid calls waiting, so that a caller placed there is quoted a wait above the
# tier's offer_callback_after_s (Tierline's default: the 20 s SLA threshold). The AHT of a call
# ended at once is held at the estimate's 1 s floor (queue/estimate.py MIN_AHT_S), so the quote
# at position p with no agent on a call is about p s (26 -> 25.7 s); a longer AHT only raises it.
# Mid callers are offered the callback; standard callers, quoted as long, are the control.
OFFER_AHEAD = 25
OFFER_CALLERS = [
    ("+19960000001", "mid"),
    ("+19960000101", "standard"),
    ("+19960000002", "mid"),
    ("+19960000102", "standard"),
    ("+19960000003", "mid"),
    ("+19960000103", "standard"),
    ("+19960000004", "mid"),
    ("+19960000104", "standard"),
]
# The tiers Tierline offers the callback to: its default (queue/decisions.py OFFER_TIERS), which
# check-tierline.toml leaves alone. No other tier's INVITE may carry X-Tierline-Offer-Callback.
OFFER_TIERS = ("mid",)


def cmd_prefill_offer(base, work):
    api = Api(base)
    ahead = [(f"+1995{i:08d}", "mid") for i in range(1, OFFER_AHEAD + 1)]
    for caller, tier in OFFER_CALLERS + ahead:
        st, doc = api.req("PUT", "/admin/tiers/" + urllib.parse.quote(caller), {"tier": tier})
        if st != 200:
            die(f"PUT /admin/tiers/{caller}: {st} {doc}")
    # one call answered and ended: the queue's AHT, without which no wait is quoted
    steps = (
        ("/v1/calls", {"call_id": "tlc-offer-aht", "caller": "+19950000000", "queue": "offer"}, 201),
        ("/v1/calls/tlc-offer-aht/answer", {"agent_id": "agent-offer-aht"}, 200),
        ("/v1/calls/tlc-offer-aht/end", {}, 200),
    )
    for path, body, want in steps:
        st, doc = api.req("POST", path, body)
        if st != want:
            die(f"could not give queue offer an AHT: POST {path}: {st} {doc}")
    doc = None
    for i, (caller, _) in enumerate(ahead, 1):
        body = {"call_id": f"tlc-offer-fill-{i}", "caller": caller, "queue": "offer"}
        st, doc = api.req("POST", "/v1/calls", body)
        if st != 201 or doc.get("status") != "waiting":
            die(f"could not fill queue offer: {st} {doc}")
    # Tierline itself offers the last of them the callback: a missing header later is Kamailio's
    if not (doc.get("tier") == "mid" and doc.get("offer_callback") is True):
        die(
            "queue offer is set up but its last mid caller is not offered a callback "
            f"(position {doc.get('position')}, estimated_wait_s {doc.get('estimated_wait_s')}, "
            f"offer_callback {doc.get('offer_callback')}): raise OFFER_AHEAD"
        )
    print(
        f"offer: queue offer has an AHT and {OFFER_AHEAD} mid calls waiting; the last one is quoted "
        f"{doc.get('estimated_wait_s')} s and offered a callback"
    )
    lines = [f"{caller};{tier};hold;offer;waiting" for caller, tier in OFFER_CALLERS]
    with open(os.path.join(work, "offer.inf"), "w") as f:
        f.write("SEQUENTIAL\n" + "\n".join(lines) + "\n")


def read_inf(work, phase):
    with open(os.path.join(work, phase + ".inf")) as f:
        rows = [ln.rstrip("\n").split(";") for ln in f if ln.strip() and ln.strip() != "SEQUENTIAL"]
    return [
        {
            "n": i + 1,
            "id": f"tlc-{phase}-{i + 1}",
            "caller": r[0],
            "tier": r[1],
            "action": r[2],
            "queue": r[3],
            "expect": r[4],
        }
        for i, r in enumerate(rows)
    ]


def cmd_agents(base, work, phase, seconds):
    """Have an agent answer every "agent" call of the phase while the caller holds."""
    api = Api(base)
    calls = [c for c in read_inf(work, phase) if c["action"] == "agent"]
    end = time.monotonic() + float(seconds)
    answered, failed = [], []
    for c in calls:
        while True:
            st, doc = api.req("GET", "/v1/calls/" + c["id"])
            if st == 200 and doc.get("status") in ("waiting", "offered"):
                st, doc = api.req("POST", f"/v1/calls/{c['id']}/answer", {"agent_id": f"agent-{c['n']}"})
                (answered if st == 200 else failed).append((c["id"], st, doc))
                break
            if st == 200 or time.monotonic() > end:
                failed.append((c["id"], st, doc))
                break
            time.sleep(0.02)
    with open(os.path.join(work, phase + ".agents.json"), "w") as f:
        json.dump({"answered": [a[0] for a in answered], "failed": failed}, f)
    print(f"agents: answered {len(answered)} of {len(calls)} calls through the API")
    for f_ in failed[:5]:
        print("agents: could not answer {}: {} {}".format(*f_))


# -- reading what happened ---------------------------------------------------------------
ACD_FIELDS = (
    "call_id",
    "from",
    "tlcall",
    "tier",
    "queue",
    "status",
    "pos",
    "wait",
    "cb",
    "offer",
    "reason",
    "expect",
    "forged",
)


def read_acd(work, phase):
    seen = {}
    dup = []
    path = os.path.join(work, phase + ".acd.log")
    if os.path.exists(path):
        with open(path, errors="replace") as f:
            for line in f:
                parts = line.rstrip("\n").split("|")
                if parts[0] != "INVITE" or len(parts) != len(ACD_FIELDS) + 1:
                    continue
                rec = dict(zip(ACD_FIELDS, parts[1:], strict=False))
                if rec["call_id"] in seen:
                    dup.append(rec["call_id"])
                seen[rec["call_id"]] = rec
    return seen, dup


def read_caller_log(work, phase):
    done = set()
    path = os.path.join(work, phase + ".caller.log")
    if os.path.exists(path):
        with open(path, errors="replace") as f:
            for line in f:
                parts = line.rstrip("\n").split("|")
                if parts[0] == "CALL" and len(parts) >= 2:
                    done.add(parts[1])
    return done


def read_rtt(work, phase):
    vals = []
    path = os.path.join(work, phase + ".rtt.csv")
    if os.path.exists(path):
        with open(path) as f:
            for line in f:
                p = line.strip().split(";")
                if len(p) >= 3 and p[2] == "1":
                    with contextlib.suppress(ValueError):
                        vals.append(float(p[1]))
    return vals


def read_lookup_us(work, phase):
    """Kamailio's own timing of the look-up, per INVITE, from its log (microseconds)."""
    vals = []
    path = os.path.join(work, "kamailio.log")
    rx = re.compile(rf"tierline: tlc-{re.escape(phase)}-\d+ from \S+ (?:->|unrouted:).*\((-?\d+) us\)")
    if os.path.exists(path):
        with open(path, errors="replace") as f:
            for line in f:
                m = rx.search(line)
                if m:
                    vals.append(int(m.group(1)))
    return vals


def pct(vals, p):
    """Nearest-rank percentile."""
    if not vals:
        return None
    s = sorted(vals)
    k = max(0, min(len(s) - 1, math.ceil(p / 100.0 * len(s)) - 1))
    return s[k]


FINAL = {"cancel": "abandoned", "hold": "abandoned", "agent": "ended"}
FALLBACK_REASON = {
    "fb-down": r"^unreachable:",
    "fb-hung": r"^unreachable:(timeout|curl)",
    "fb-503": r"^http-503$",
    "fb-garbage": r"^bad-answer$",
    "fb-nothttp": r"^unreachable:",
    "baseline": r"^disabled$",
}


def cmd_verify(base, work, phase, kind, bound_ms=None):
    calls = read_inf(work, phase)
    acd, dup = read_acd(work, phase)
    done = read_caller_log(work, phase)
    rtt = read_rtt(work, phase)
    problems = []

    def bad(msg):
        problems.append(msg)

    for d in sorted(set(dup)):
        bad(f"{d} reached the ACD more than once")
    routed = fallen = 0
    for c in calls:
        a = acd.get(c["id"])
        if a is None:
            bad("LOST: {} from {} never reached the ACD".format(c["id"], c["caller"]))
            continue
        if c["id"] not in done:
            bad("LOST: {} from {} did not complete at the caller's side".format(c["id"], c["caller"]))
        if a["from"] != c["caller"]:
            bad("{}: ACD saw caller {!r}, placed {!r}".format(c["id"], a["from"], c["caller"]))
        if a["status"] in ("waiting", "overflowed"):
            routed += 1
        elif a["status"] == "unrouted":
            fallen += 1
        if kind in ("routed", "overflow", "offer"):
            want = c["expect"]
            if a["status"] != want:
                bad(
                    f"MISROUTE: {c['id']} from {c['caller']}: X-Tierline-Status {a['status']!r}, "
                    f"expected {want!r} (reason {a['reason']!r})"
                )
                continue
            if a["tier"] != c["tier"]:
                bad(
                    f"MISROUTE: {c['id']} from {c['caller']}: X-Tierline-Tier {a['tier']!r}, "
                    f"the file says {c['tier']!r}"
                )
            if a["queue"] != c["queue"]:
                bad("MISROUTE: {}: X-Tierline-Queue {!r}, expected {!r}".format(c["id"], a["queue"], c["queue"]))
            if a["tlcall"] != c["id"]:
                bad("{}: X-Tierline-Call {!r}".format(c["id"], a["tlcall"]))
            if want == "waiting" and not re.match(r"^[1-9][0-9]*$", a["pos"]):
                bad("{}: waiting without a valid X-Tierline-Position ({!r})".format(c["id"], a["pos"]))
            if a["wait"] and not re.match(r"^[0-9]+$", a["wait"]):
                bad("{}: X-Tierline-Wait {!r} is not whole seconds".format(c["id"], a["wait"]))
            if want == "overflowed":
                if c["tier"] == "mid" and not a["cb"]:
                    bad("{}: overflowed mid caller without X-Tierline-Callback".format(c["id"]))
                if c["tier"] != "mid" and a["cb"]:
                    bad("{}: overflowed {} caller with a callback {!r}".format(c["id"], c["tier"], a["cb"]))
            if a["reason"]:
                bad("{}: routed call with X-Tierline-Reason {!r}".format(c["id"], a["reason"]))
            # Only a waiting call of an offered tier may carry the offer (the caller's forged
            # one must be gone); in the offer phase every such call is quoted past the threshold.
            if a["offer"] and (a["offer"] != "true" or want != "waiting" or c["tier"] not in OFFER_TIERS):
                bad(
                    f"{c['id']}: {want} {c['tier']} caller with X-Tierline-Offer-Callback {a['offer']!r} "
                    "(a forged header got through?)"
                )
            if kind == "offer" and c["tier"] in OFFER_TIERS and a["offer"] != "true":
                bad(
                    f"NO OFFER: {c['id']} from {c['caller']}: waiting {c['tier']} caller at position {a['pos']!r}, "
                    f"X-Tierline-Wait {a['wait']!r}, without X-Tierline-Offer-Callback: true"
                )
        else:
            if a["status"] != "unrouted":
                bad("MISSED FALLBACK: {}: X-Tierline-Status {!r}, expected 'unrouted'".format(c["id"], a["status"]))
            if a["tier"] or a["pos"] or a["queue"] or a["offer"]:
                bad(
                    f"{c['id']}: unrouted call carries tier/queue/position/offer "
                    f"({a['tier']!r}/{a['queue']!r}/{a['pos']!r}/{a['offer']!r}): a forged header got through?"
                )
            rx = FALLBACK_REASON.get(phase)
            if rx and not (re.match(rx, a["reason"]) or a["reason"] == "breaker-open"):
                bad("{}: unexpected X-Tierline-Reason {!r}".format(c["id"], a["reason"]))

    if kind == "fallback":
        rx = FALLBACK_REASON.get(phase)
        if rx and not any(re.match(rx, a["reason"]) for a in acd.values()):
            bad(f"no call in {phase} shows the failure itself (reason ~ {rx}): was the failure exercised?")
        # the breaker is what keeps a hung Tierline from holding every worker, call after call
        if len(calls) >= 20 and not any(a["reason"] == "breaker-open" for a in acd.values()):
            bad(f"the breaker never opened in {phase}: every call asked a failing Tierline")

    # Tierline's view: the hang-ups were reported
    if kind in ("routed", "overflow", "offer"):
        api = Api(base)
        want = {}
        for c in calls:
            if kind == "routed":
                want[c["id"]] = FINAL[c["action"]]
            else:
                want[c["id"]] = "abandoned" if c["expect"] == "waiting" else "overflowed"
        got = {}
        end = time.monotonic() + 10
        pending = dict(want)
        while pending:
            for cid in list(pending):
                st, doc = api.req("GET", "/v1/calls/" + cid)
                got[cid] = (st, doc)
                if st == 200 and doc.get("status") == pending[cid]:
                    del pending[cid]
            if not pending or time.monotonic() > end:
                break
            time.sleep(0.25)
        tiers_by_id = {c["id"]: c["tier"] for c in calls}
        for cid, w in want.items():
            st, doc = got[cid]
            if st != 200:
                bad(f"TIERLINE: {cid}: GET answered {st} {doc}")
            elif doc.get("status") != w:
                bad("TIERLINE: {} shows {!r}, expected {!r}".format(cid, doc.get("status"), w))
            elif doc.get("tier") != tiers_by_id[cid]:
                bad("TIERLINE: {} has tier {!r}, expected {!r}".format(cid, doc.get("tier"), tiers_by_id[cid]))
        if kind == "overflow":
            # The list comes a page at a time (at most 100 a page): follow the cursor to the end.
            cbs: list[dict[str, object]] = []
            path = "/admin/callbacks?status=open&limit=100"
            for _ in range(1000):
                st, doc = api.req("GET", path)
                if st != 200 or not isinstance(doc, dict):
                    bad(f"TIERLINE: GET {path} answered {st} {doc}")
                    break
                cbs.extend(doc.get("callbacks", []))
                if not doc.get("next_cursor"):
                    break
                cursor = urllib.parse.quote(doc["next_cursor"], safe="")
                path = f"/admin/callbacks?status=open&limit=100&cursor={cursor}"
            for c in calls:
                if c["tier"] == "mid" and c["expect"] == "overflowed":
                    cb = acd.get(c["id"], {}).get("cb")
                    if not any(x.get("callback_id") == cb and x.get("call_id") == c["id"] for x in cbs):
                        bad("TIERLINE: no open callback {!r} for {}".format(cb, c["id"]))

    over = [v for v in rtt if bound_ms is not None and v >= bound_ms]
    if bound_ms is not None and over:
        bad(
            f"MISSED FALLBACK: {len(over)} call(s) took >= {bound_ms:.0f} ms from INVITE to ringing "
            f"(max {max(over):.0f} ms)"
        )
    if len(rtt) < len(calls):
        bad(f"only {len(rtt)} of {len(calls)} calls have an INVITE->180 time")

    counts = {
        "phase": phase,
        "kind": kind,
        "placed": len(calls),
        "reached_acd": len(acd),
        "completed": len(done),
        "routed": routed,
        "fallen_back": fallen,
        "problems": len(problems),
        "rtt_p50_ms": pct(rtt, 50),
        "rtt_p99_ms": pct(rtt, 99),
        "rtt_max_ms": max(rtt) if rtt else None,
    }
    lk = read_lookup_us(work, phase)
    counts["lookup_p50_us"] = pct(lk, 50)
    counts["lookup_p99_us"] = pct(lk, 99)
    counts["lookup_max_us"] = max(lk) if lk else None
    if kind == "routed":
        counts["actions"] = {a: sum(1 for c in calls if c["action"] == a) for a in ("cancel", "hold", "agent")}
    with open(os.path.join(work, phase + ".result.json"), "w") as f:
        json.dump(counts, f)
    line = (
        f"{phase:<11} placed {len(calls):5d}  reached ACD {len(acd):5d}  routed {routed:5d}  fallen back {fallen:5d}  "
        f"INVITE->180 p50 {fmt(counts['rtt_p50_ms'])} ms p99 {fmt(counts['rtt_p99_ms'])} ms "
        f"max {fmt(counts['rtt_max_ms'])} ms"
    )
    print(line)
    if kind == "offer":
        for tier in sorted({c["tier"] for c in calls}, key=TIERS.index):
            mine = [acd[c["id"]] for c in calls if c["tier"] == tier and c["id"] in acd]
            waits = sorted(int(a["wait"]) for a in mine if a["wait"].isdigit())
            span = f"{waits[0]}-{waits[-1]} s" if waits else "none"
            print(
                f"{'':<11} {tier:<8} X-Tierline-Offer-Callback: true on {sum(a['offer'] == 'true' for a in mine)} "
                f"of {sum(c['tier'] == tier for c in calls)} calls (X-Tierline-Wait {span})"
            )
    for p in problems[:25]:
        print("  " + p)
    if len(problems) > 25:
        print(f"  ... and {len(problems) - 25} more")
    sys.exit(1 if problems else 0)


def cmd_verify_early_cancel(work, phase, fakelog):
    """Callers who hung up during the look-up: 487 at the caller, abandon at Tierline."""
    calls = read_inf(work, phase)
    done = read_caller_log(work, phase)
    with open(fakelog, errors="replace") as f:
        asked = f.read().splitlines()
    problems = []
    for c in calls:
        if c["id"] not in done:
            problems.append("LOST: {} did not end with 487 at the caller's side".format(c["id"]))
        if not any(ln.startswith("POST /v1/calls ") and f'"call_id":"{c["id"]}"' in ln for ln in asked):
            problems.append("{}: Tierline was never asked".format(c["id"]))
        if not any(ln.startswith(f"POST /v1/calls/{c['id']}/abandon ") for ln in asked):
            problems.append("UNREPORTED: {} hung up during the look-up, no abandon reached Tierline".format(c["id"]))
    res = {
        "phase": phase,
        "kind": "early-cancel",
        "placed": len(calls),
        "reached_acd": 0,
        "completed": len(done),
        "routed": 0,
        "fallen_back": 0,
        "problems": len(problems),
    }
    with open(os.path.join(work, phase + ".result.json"), "w") as f:
        json.dump(res, f)
    reported = sum(1 for c in calls if any(ln.startswith(f"POST /v1/calls/{c['id']}/abandon ") for ln in asked))
    print(
        f"{phase:<11} placed {len(calls):5d}  hung up during the look-up: 487 at the caller {len(done)}, "
        f"abandon reported {reported}"
    )
    for p_ in problems[:25]:
        print("  " + p_)
    sys.exit(1 if problems else 0)


def fmt(v):
    if v is None:
        return "-"
    return f"{v:g}"


def triple(d, k50, k99, kmax, unit):
    return f"p50 {fmt(d.get(k50))} {unit}  p99 {fmt(d.get(k99))} {unit}  max {fmt(d.get(kmax))} {unit}"


def cmd_summary(work):
    res = {}
    for name in sorted(os.listdir(work)):
        if name.endswith(".result.json"):
            with open(os.path.join(work, name)) as f:
                r = json.load(f)
            res[r["phase"]] = r
    placed = sum(r["placed"] for r in res.values())
    routed = sum(r["routed"] for r in res.values())
    fallen = sum(r["fallen_back"] for r in res.values() if r["phase"] != "baseline")
    base = res.get("baseline", {})
    main = res.get("routed", {})
    print("== summary")
    print(f"calls placed       {placed} (every phase, the baseline included)")
    print(f"routed by Tierline {routed}")
    print(f"fallen back        {fallen} (Tierline down, hung, 503, garbage, not HTTP)")
    print(f"problems           {sum(r['problems'] for r in res.values())}")
    if main:
        print(f"latency of {main['placed']} calls at the same rate, with and without the look-up:")
        print("  INVITE -> 180 at the caller (SIPp; its clock moves in steps of a few ms)")
        print("    with the look-up     " + triple(main, "rtt_p50_ms", "rtt_p99_ms", "rtt_max_ms", "ms"))
        if base:
            print("    without it           " + triple(base, "rtt_p50_ms", "rtt_p99_ms", "rtt_max_ms", "ms"))
        print("  the routing step inside Kamailio, per INVITE (route TL_NEW_CALL, microseconds)")
        print("    with the look-up     " + triple(main, "lookup_p50_us", "lookup_p99_us", "lookup_max_us", "us"))
        if base:
            print("    without it           " + triple(base, "lookup_p50_us", "lookup_p99_us", "lookup_max_us", "us"))
    for ph in ("fb-down", "fb-hung", "fb-503", "fb-garbage", "fb-nothttp"):
        r = res.get(ph)
        if r:
            print(
                f"fallback {ph[3:]:<8} {r['fallen_back']:4d} calls unrouted; INVITE -> 180 max "
                f"{fmt(r.get('rtt_max_ms'))} ms; routing step max {fmt(r.get('lookup_max_us'))} us"
            )


def cmd_latency(work, phase):
    rtt = read_rtt(work, phase)
    print(json.dumps({"n": len(rtt), "p50": pct(rtt, 50), "p99": pct(rtt, 99), "max": max(rtt) if rtt else None}))


# -- a broken Tierline -------------------------------------------------------------------
def answer(status, body):
    head = f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n".encode()
    return b"HTTP/1.1 " + status + b"\r\n" + head + body


def cmd_fake(mode, port):
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", int(port)))
    srv.listen(512)
    held = []
    printing = threading.Lock()

    def serve(conn):
        try:
            if mode == "hung":
                held.append(conn)  # read nothing, answer nothing, keep it open
                return
            conn.settimeout(30)
            buf = b""
            while True:
                while b"\r\n\r\n" not in buf:
                    chunk = conn.recv(65536)
                    if not chunk:
                        return
                    buf += chunk
                head, _, rest = buf.partition(b"\r\n\r\n")
                m = re.search(rb"(?i)content-length: *(\d+)", head)
                need = int(m.group(1)) if m else 0
                while len(rest) < need:
                    chunk = conn.recv(65536)
                    if not chunk:
                        return
                    rest += chunk
                buf = rest[need:]
                if mode == "slow":
                    # a valid answer, 150 ms late; prints what was asked, for the check
                    line = head.split(b"\r\n", 1)[0].decode("latin-1")
                    # One write under a lock: print() from several threads can put one request's
                    # newline after another's text, and the check then misses a reported abandon.
                    with printing:
                        sys.stdout.write(line + " " + rest[:need].decode("utf-8", "replace") + "\n")
                        sys.stdout.flush()
                    time.sleep(0.15)
                    m = re.search(rb'"call_id":"([^"]*)"', rest[:need])
                    cid = m.group(1) if m else b"x"
                    body = (
                        b'{"call_id":"%s","caller":"+1","tier":"vip","queue":"default","status":"waiting",'
                        b'"position":1,"ahead":0,"estimated_wait_s":null}' % cid
                    )
                    code = b"201 Created" if line.startswith("POST /v1/calls ") else b"200 OK"
                    conn.sendall(answer(code, body))
                elif mode == "503":
                    body = b'{"error":{"code":"store_unavailable","message":"fake"}}'
                    conn.sendall(answer(b"503 Service Unavailable", body))
                elif mode == "garbage":
                    body = b'<html>{"tier":"vip",'
                    conn.sendall(answer(b"201 Created", body))
                else:  # nothttp
                    conn.sendall(b"SSH-2.0-OpenSSH_9.2\r\n")
                    conn.close()
                    return
        except OSError:
            pass

    while True:
        conn, _ = srv.accept()
        threading.Thread(target=serve, args=(conn,), daemon=True).start()


def main(argv):
    if not argv:
        die(__doc__)
    cmd, args = argv[0], argv[1:]
    if cmd == "freeport":
        cmd_freeport(*args)
    elif cmd == "wait-http":
        cmd_wait_http(*args)
    elif cmd == "sip-ping":
        cmd_sip_ping(*args)
    elif cmd == "load":
        cmd_load(*args)
    elif cmd == "plan":
        cmd_plan(*args)
    elif cmd == "prefill":
        cmd_prefill(*args)
    elif cmd == "prefill-offer":
        cmd_prefill_offer(*args)
    elif cmd == "agents":
        cmd_agents(*args)
    elif cmd == "verify":
        bound = None
        if "--bound-ms" in args:
            i = args.index("--bound-ms")
            bound = float(args[i + 1])
            args = args[:i] + args[i + 2 :]
        cmd_verify(*args, bound_ms=bound)
    elif cmd == "verify-early-cancel":
        cmd_verify_early_cancel(*args)
    elif cmd == "fake":
        cmd_fake(*args)
    elif cmd == "latency":
        cmd_latency(*args)
    elif cmd == "summary":
        cmd_summary(*args)
    else:
        die(f"unknown command {cmd}")


if __name__ == "__main__":
    main(sys.argv[1:])
