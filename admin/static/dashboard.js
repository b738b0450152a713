// Tierline supervisor dashboard: polls /admin/sla (today and 15m) every 2 s with the admin
// bearer token and redraws the table and today's interval charts. Callback counts per queue ×
// tier come with the SLA rows (counters the engine keeps), never from reading the callback
// list: a poll costs the same with ten callbacks or a hundred thousand.
// Plain browser JavaScript, no libraries, nothing fetched from anywhere but this service.
// Every word shown comes from the language catalogue (i18n.js: English or Simplified Chinese,
// the browser's or the one picked on the page); numbers and times are formatted for it.
(function () {
  "use strict";

  var I18n = window.TierlineI18n;
  function t(key, vars) { return I18n.t(key, vars); }

  var POLL_MS = 2000;
  var AT_RISK_MARGIN = 0.05; // admin/sla_status.py holds the same rule
  var EPSILON = 1e-9;
  var TOKEN_KEY = "tierline.adminToken";
  var SVG_NS = "http://www.w3.org/2000/svg";
  var TIERS = ["vip", "mid", "standard", "blacklisted"];
  // status → its catalogue key (the words, with their sign, so a status is never told by colour alone)
  var STATUS_KEYS = { "met": "dash.status_met", "at risk": "dash.status_at_risk", "missed": "dash.status_missed", "idle": "dash.status_idle", "no target": "dash.status_no_target" };

  var app = document.getElementById("app");
  var statusLine = document.getElementById("status-line");
  var token = "";
  var polls = 0;
  var timer = null;
  var generation = 0; // a poll started by the token form supersedes the running loop

  // --- token: from #token=… (then dropped from the address bar) or sessionStorage ---------

  function storage() {
    try { return window.sessionStorage; } catch (e) { return null; }
  }

  function loadToken() {
    var match = /(?:^#|&)token=([^&]*)/.exec(window.location.hash);
    var store = storage();
    if (match) {
      token = decodeURIComponent(match[1]);
      if (store) store.setItem(TOKEN_KEY, token);
      window.history.replaceState(null, "", window.location.pathname + window.location.search);
    } else {
      token = (store && store.getItem(TOKEN_KEY)) || "";
    }
  }

  function saveToken(value) {
    token = value;
    var store = storage();
    if (store) {
      if (value) store.setItem(TOKEN_KEY, value); else store.removeItem(TOKEN_KEY);
    }
  }

  // --- the rule: met / at risk / missed ---------------------------------------------------

  function slaStatus(level, target, waitingNow, oldestWait, threshold) {
    if (target === null || target === undefined) return "no target";
    var lateWaiter = oldestWait !== null && oldestWait !== undefined && oldestWait > threshold;
    if (level === null || level === undefined) return waitingNow > 0 ? "at risk" : "idle";
    if (level < target - EPSILON) return "missed";
    if (level < target + AT_RISK_MARGIN - EPSILON || lateWaiter) return "at risk";
    return "met";
  }

  function statusClass(status) { return status.replace(" ", "-"); }

  // --- formatting ---------------------------------------------------------------------------

  function pct(v) { return I18n.percent(v); }

  function secs(v) {
    if (v === null || v === undefined) return "–";
    if (v < 60) return t("unit.seconds", { s: I18n.number(v, 1) });
    var whole = Math.round(v);
    var m = Math.floor(whole / 60), s = whole % 60;
    if (m < 60) return m + ":" + (s < 10 ? "0" : "") + s;
    var h = Math.floor(m / 60), mm = m % 60;
    return h + ":" + (mm < 10 ? "0" : "") + mm + ":" + (s < 10 ? "0" : "") + s;
  }

  function timeFormatter(zone, withSeconds) {
    var options = { hour: "2-digit", minute: "2-digit", hourCycle: "h23", timeZone: zone };
    if (withSeconds) options.second = "2-digit";
    try { return new Intl.DateTimeFormat(I18n.lang, options); } catch (e) {
      options.timeZone = "UTC";
      return new Intl.DateTimeFormat(I18n.lang, options);
    }
  }

  // --- DOM helpers --------------------------------------------------------------------------

  function el(tag, attrs, text) {
    var node = document.createElement(tag);
    for (var key in attrs) if (Object.prototype.hasOwnProperty.call(attrs, key)) node.setAttribute(key, attrs[key]);
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function svg(tag, attrs, text) {
    var node = document.createElementNS(SVG_NS, tag);
    for (var key in attrs) if (Object.prototype.hasOwnProperty.call(attrs, key)) node.setAttribute(key, String(attrs[key]));
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function rawValue(v) { return v === null || v === undefined ? "" : String(v); }

  function cell(field, value, text, extraClass) {
    var attrs = { "data-field": field, "data-value": rawValue(value) };
    if (extraClass) attrs["class"] = extraClass;
    return el("td", attrs, text);
  }

  // --- fetching -----------------------------------------------------------------------------

  function AuthError(status) { this.status = status; }

  function getJson(path) {
    var headers = { "Accept": "application/json" };
    if (token) headers["Authorization"] = "Bearer " + token;
    return fetch(path, { headers: headers, cache: "no-store", credentials: "omit" }).then(function (resp) {
      if (resp.status === 401 || resp.status === 403) throw new AuthError(resp.status);
      if (!resp.ok) { var failure = new Error(path + " answered " + resp.status); failure.status = resp.status; throw failure; }
      return resp.json();
    });
  }

  // --- rendering ----------------------------------------------------------------------------

  function renderTable(today, rolling) {
    var body = document.getElementById("sla-rows");
    var byKey = {};
    rolling.rows.forEach(function (r) { byKey[r.queue + "\u0000" + r.tier] = r; });
    var fragment = document.createDocumentFragment();
    var lastQueue = null;
    today.rows.forEach(function (row) {
      var key = row.queue + "\u0000" + row.tier;
      var r15 = byKey[key] || {};
      var status = slaStatus(r15.service_level, row.target, row.waiting_now, row.oldest_wait_now_s, row.threshold_s);
      var todayStatus = slaStatus(row.service_level, row.target, 0, null, row.threshold_s);
      var tr = el("tr", { "data-queue": row.queue, "data-tier": row.tier, "data-status": status });
      if (row.queue !== lastQueue) tr.setAttribute("class", "queue-start");
      tr.appendChild(el("td", { "data-field": "queue" }, row.queue === lastQueue ? "" : row.queue));
      lastQueue = row.queue;
      tr.appendChild(el("td", { "data-field": "tier", "class": "tier tier-" + row.tier }, t("tier." + row.tier)));
      var badge = el("span", { "class": "pill " + statusClass(status) }, t(STATUS_KEYS[status]));
      var statusCell = el("td", { "data-field": "status", "data-value": status });
      statusCell.appendChild(badge);
      tr.appendChild(statusCell);
      tr.appendChild(cell("sl_15m", r15.service_level, pct(r15.service_level), statusClass(status)));
      tr.appendChild(cell("sl_today", row.service_level, pct(row.service_level), statusClass(todayStatus)));
      tr.appendChild(cell("target", row.target, row.target === null ? t("dash.no_target") : t("dash.target_within", { target: pct(row.target), s: I18n.number(row.threshold_s) })));
      // Places kept for a requested callback are not waiting calls, but callers behind them wait for them.
      var waiting = I18n.number(row.waiting_now) + (row.held ? " " + t("dash.held", { n: I18n.number(row.held) }) : "");
      tr.appendChild(cell("waiting_now", row.waiting_now, waiting));
      var late = row.oldest_wait_now_s !== null && row.oldest_wait_now_s > row.threshold_s;
      tr.appendChild(cell("oldest_wait_now_s", row.oldest_wait_now_s, secs(row.oldest_wait_now_s), late ? "warn" : ""));
      tr.appendChild(cell("asa_s", row.asa_s, secs(row.asa_s)));
      tr.appendChild(cell("offered", row.offered, I18n.number(row.offered)));
      tr.appendChild(cell("answered", row.answered, I18n.number(row.answered)));
      var abandons = I18n.number(row.abandoned) + (row.short_abandoned ? " " + t("dash.short_abandons", { n: I18n.number(row.short_abandoned) }) : "");
      tr.appendChild(cell("abandoned", row.abandoned, abandons));
      tr.appendChild(cell("overflowed", row.overflowed, I18n.number(row.overflowed)));
      tr.appendChild(cell("callbacks_open", row.callbacks_open, I18n.number(row.callbacks_open)));
      var overdue = row.callbacks_overdue;
      tr.appendChild(cell("callbacks_overdue", overdue, I18n.number(overdue), overdue ? "warn" : ""));
      fragment.appendChild(tr);
    });
    body.replaceChildren(fragment);
  }

  function renderCallbacks(summary) {
    var values = {
      callbacks_open: [summary.open, I18n.number(summary.open)],
      callbacks_assigned: [summary.assigned, I18n.number(summary.assigned)],
      callbacks_overdue: [summary.overdue, I18n.number(summary.overdue)],
      callbacks_at_risk: [summary.at_risk, I18n.number(summary.at_risk)],
      callbacks_completed: [summary.completed, I18n.number(summary.completed)],
      callbacks_service_level: [summary.service_level, pct(summary.service_level)]
    };
    var cells = document.querySelectorAll("#callback-summary dd");
    Array.prototype.forEach.call(cells, function (dd) {
      var v = values[dd.getAttribute("data-field")];
      dd.setAttribute("data-value", rawValue(v[0]));
      dd.textContent = v[1];
      var field = dd.getAttribute("data-field");
      var warn = (field === "callbacks_overdue" && summary.overdue) || (field === "callbacks_at_risk" && summary.at_risk);
      dd.setAttribute("class", warn ? "warn" : "");
    });
  }

  // The team lead's view (GET /admin/workload): per queue, active callbacks by the hour their
  // deadline falls in over the next 24 h, overdue and at risk; who holds what now.
  function renderWorkload(w) {
    var zone = w.timezone;
    var hour = timeFormatter(zone, false);
    var stamp = new Intl.DateTimeFormat(I18n.lang, { month: "short", day: "numeric", hour: "2-digit", minute: "2-digit", hourCycle: "h23", timeZone: zone });
    var head = document.getElementById("workload-head");
    var cells = [el("th", { "class": "left" }, t("dash.col_queue")), el("th", {}, t("dash.wl_active")),
      el("th", {}, t("dash.wl_overdue")), el("th", {}, t("dash.wl_at_risk"))];
    for (var i = 0; i + 1 < w.hours.length; i++) {
      cells.push(el("th", { "class": "hour", "data-hour-start": w.hours[i] }, i === 0 ? t("dash.wl_now") : hour.format(new Date(Date.parse(w.hours[i])))));
    }
    cells.push(el("th", {}, t("dash.wl_later")));
    head.replaceChildren.apply(head, cells);
    var rows = document.createDocumentFragment();
    w.queues.forEach(function (q) {
      var tr = el("tr", { "data-queue": q.queue });
      tr.appendChild(el("td", { "class": "left" }, q.queue));
      tr.appendChild(cell("active", q.active, I18n.number(q.active)));
      tr.appendChild(cell("overdue", q.overdue, I18n.number(q.overdue), q.overdue ? "warn" : ""));
      tr.appendChild(cell("at_risk", q.at_risk, I18n.number(q.at_risk), q.at_risk ? "warn" : ""));
      q.by_hour.forEach(function (n, i) {
        var td = cell("hour_" + i, n, n ? I18n.number(n) : "·", n ? "busy" : "quiet");
        td.setAttribute("title", t("dash.wl_cell", { queue: q.queue, time: stamp.format(new Date(Date.parse(w.hours[i]))), n: I18n.number(n) }));
        tr.appendChild(td);
      });
      tr.appendChild(cell("later", q.later, I18n.number(q.later)));
      rows.appendChild(tr);
    });
    document.getElementById("workload-rows").replaceChildren(rows);
    var held = document.createDocumentFragment();
    w.holders.forEach(function (h) {
      var tr = el("tr", { "data-agent": h.agent_id, "data-callback": h.callback_id });
      tr.appendChild(el("td", { "class": "left" }, h.agent_id));
      tr.appendChild(el("td", { "class": "left" }, h.caller));
      tr.appendChild(el("td", { "class": "left" }, h.queue));
      tr.appendChild(el("td", { "class": "left" }, t("tier." + h.tier)));
      tr.appendChild(el("td", {}, h.assigned_at ? stamp.format(new Date(Date.parse(h.assigned_at))) : "–"));
      tr.appendChild(el("td", {}, stamp.format(new Date(Date.parse(h.deadline)))));
      held.appendChild(tr);
    });
    document.getElementById("holders-rows").replaceChildren(held);
    document.getElementById("holders-none").hidden = w.holders.length > 0;
    document.getElementById("workload").setAttribute("data-state", "ready");
  }

  // The last applied grading run (GET /admin/grading, issue 17): numbers and share per tier, and
  // where the numbers in both tables came from (the migration matrix) when the run had one.
  var GRADING_PATH = "/admin/grading";

  function renderGrading(g) {
    var tiers = ["vip", "mid", "standard", "blacklisted"];
    var moved = g.migration;
    document.getElementById("grading-summary").textContent = t("dash.grading_summary", {
      as_of: g.as_of, customers: I18n.number(g.customers), callers: I18n.number(g.callers)
    });
    var head = document.getElementById("grading-head");
    var cells = [el("th", { "class": "left" }, t("dash.col_tier")), el("th", {}, t("dash.gr_numbers")), el("th", {}, t("dash.gr_share"))];
    if (moved) {
      cells.push(el("th", {}, t("dash.gr_before")));
      tiers.forEach(function (to) { cells.push(el("th", {}, t("dash.gr_to", { tier: t("tier." + to) }))); });
    }
    head.replaceChildren.apply(head, cells);
    var rows = document.createDocumentFragment();
    tiers.forEach(function (tier) {
      var n = g.tiers[tier] || 0;
      var tr = el("tr", { "data-tier": tier });
      tr.appendChild(el("td", { "class": "left tier tier-" + tier }, t("tier." + tier)));
      tr.appendChild(cell("numbers", n, I18n.number(n)));
      tr.appendChild(cell("share", g.callers ? n / g.callers : null, g.callers ? pct(n / g.callers) : "–"));
      if (moved) {
        tr.appendChild(cell("before", moved.before[tier], I18n.number(moved.before[tier])));
        tiers.forEach(function (to) {
          var k = moved.matrix[tier][to];
          tr.appendChild(cell("to_" + to, k, I18n.number(k), k && to !== tier ? "busy" : ""));
        });
      }
      rows.appendChild(tr);
    });
    document.getElementById("grading-rows").replaceChildren(rows);
    document.getElementById("grading-table").hidden = false;
    document.getElementById("grading-none").hidden = true;
    document.getElementById("grading").setAttribute("data-state", "ready");
  }

  function noGrading(err) {
    var none = err && err.status === 404;
    document.getElementById("grading-table").hidden = none;
    document.getElementById("grading-none").hidden = !none;
    document.getElementById("grading").setAttribute("data-state", none ? "none" : "error");
  }

  function renderCharts(today) {
    var container = document.getElementById("charts");
    var dayStart = Date.parse(today.start);
    var clock = timeFormatter(today.timezone, false);
    var queues = [];
    var rowsByQueue = {};
    today.rows.forEach(function (row) {
      if (!rowsByQueue[row.queue]) { rowsByQueue[row.queue] = []; queues.push(row.queue); }
      rowsByQueue[row.queue].push(row);
    });
    var fragment = document.createDocumentFragment();
    queues.forEach(function (queue) { fragment.appendChild(chart(queue, rowsByQueue[queue], dayStart, clock)); });
    container.replaceChildren(fragment);
  }

  function chart(queue, rows, dayStart, clock) {
    var W = 1200, H = 200, left = 44, right = 70, top = 12, bottom = 26;
    var pw = W - left - right, ph = H - top - bottom;
    var slots = 96;
    var offered = {}, starts = {};
    rows.forEach(function (row) {
      (row.intervals || []).forEach(function (iv) {
        var slot = Math.round((Date.parse(iv.start) - dayStart) / 900000);
        slots = Math.max(slots, slot + 1);
        offered[slot] = (offered[slot] || 0) + iv.offered;
        starts[slot] = iv.start;
      });
    });
    var maxOffered = 1;
    for (var k in offered) if (offered[k] > maxOffered) maxOffered = offered[k];
    var slotW = pw / slots;
    function x(slot) { return left + slot * slotW; }
    function y(level) { return top + (1 - level) * ph; }

    var box = el("div", { "class": "chart", "data-queue": queue });
    box.appendChild(el("h3", {}, t("dash.chart_queue", { queue: queue })));
    var root = svg("svg", { viewBox: "0 0 " + W + " " + H, role: "img", "aria-label": t("dash.chart_queue_label", { queue: queue }), "data-chart-queue": queue });

    [0, 0.25, 0.5, 0.75, 1].forEach(function (level) {
      root.appendChild(svg("line", { x1: left, x2: W - right, y1: y(level), y2: y(level), "class": level === 0 ? "axis" : "grid" }));
      root.appendChild(svg("text", { x: left - 6, y: y(level) + 4, "text-anchor": "end" }, Math.round(level * 100) + "%"));
    });
    root.appendChild(svg("text", { x: W - right + 6, y: top + 10 }, t(maxOffered === 1 ? "dash.one_call" : "dash.calls", { n: I18n.number(maxOffered) })));
    root.appendChild(svg("text", { x: W - right + 6, y: top + ph + 4 }, "0"));
    for (var hour = 0; hour <= slots / 4; hour += 3) {
      var hx = x(hour * 4);
      root.appendChild(svg("line", { x1: hx, x2: hx, y1: top + ph, y2: top + ph + 4, "class": "axis" }));
      root.appendChild(svg("text", { x: hx, y: H - 8, "text-anchor": "middle" }, clock.format(new Date(dayStart + hour * 3600000))));
    }

    var bars = svg("g", { "class": "bars" });
    Object.keys(offered).map(Number).filter(function (slot) { return offered[slot] > 0; }).sort(function (a, b) { return a - b; }).forEach(function (slot) {
      var height = (offered[slot] / maxOffered) * ph;
      var rect = svg("rect", {
        x: x(slot) + 1, y: top + ph - height, width: Math.max(1, slotW - 2), height: height, "class": "bar",
        "data-interval-start": starts[slot], "data-offered": offered[slot]
      });
      var lines = [t("dash.bar_offered", { time: clock.format(new Date(Date.parse(starts[slot]))), n: I18n.number(offered[slot]) })];
      rows.forEach(function (row) {
        var iv = (row.intervals || []).filter(function (i) { return i.start === starts[slot]; })[0];
        if (iv && iv.offered) lines.push(t("dash.bar_tier", { tier: t("tier." + row.tier), level: pct(iv.service_level), n: I18n.number(iv.offered) }));
      });
      rect.appendChild(svg("title", {}, lines.join("\n")));
      bars.appendChild(rect);
    });
    root.appendChild(bars);

    var targetsDrawn = {};
    rows.forEach(function (row) {
      if (row.target === null || targetsDrawn[row.target]) return;
      targetsDrawn[row.target] = true;
      root.appendChild(svg("line", { x1: left, x2: W - right, y1: y(row.target), y2: y(row.target), "class": "target line-" + row.tier, "data-target": row.target }));
    });

    rows.forEach(function (row) {
      var d = "", pen = "M";
      var group = svg("g", { "class": "series", "data-tier": row.tier });
      (row.intervals || []).forEach(function (iv) {
        var slot = Math.round((Date.parse(iv.start) - dayStart) / 900000);
        if (iv.service_level === null) { pen = "M"; return; }
        var px = x(slot) + slotW / 2, py = y(iv.service_level);
        d += pen + px.toFixed(1) + " " + py.toFixed(1) + " ";
        pen = "L";
        var dot = svg("circle", { cx: px, cy: py, r: 3, "class": "dot line-" + row.tier, "data-interval-start": iv.start, "data-service-level": iv.service_level });
        dot.appendChild(svg("title", {}, t("dash.dot", { tier: t("tier." + row.tier), time: clock.format(new Date(Date.parse(iv.start))), level: pct(iv.service_level) })));
        group.appendChild(dot);
      });
      if (d) group.insertBefore(svg("path", { d: d.trim(), "class": "sl line-" + row.tier }), group.firstChild);
      root.appendChild(group);
    });
    box.appendChild(root);

    var legend = el("div", { "class": "legend-row" });
    TIERS.forEach(function (tier) {
      var item = el("span", {});
      item.appendChild(el("span", { "class": "swatch " + tier }));
      item.appendChild(document.createTextNode(t("tier." + tier)));
      legend.appendChild(item);
    });
    box.appendChild(legend);
    return box;
  }

  // --- history view: each tier's last 30 days and any day's 15-minute chart -----------------
  // Read from the call history archive (/admin/reports/sla, every queue summed per tier), not
  // polled: once when the first figures arrive (the service's own clock and zone say which
  // days), and when a day is picked. A service with --history off says so (409 history_off).

  var HISTORY_DAYS = 30;
  var HISTORY_RETRY_MS = 60000;
  var historyZone = null;
  var historyState = "waiting"; // waiting → loading → ready | off | error (retried after a minute)
  var historyRetryAt = 0;

  var historyMessage = ["dash.loading", {}];

  // `key`, `vars`: the catalogue's words, kept to be shown again in another language.
  function setHistory(state, key, vars) {
    historyState = state;
    historyMessage = [key, vars || {}];
    document.getElementById("history").setAttribute("data-state", state);
    document.getElementById("history-status").textContent = t(key, vars);
  }

  function localDate(ms, zone) {
    var parts = new Intl.DateTimeFormat("en-CA", { timeZone: zone, year: "numeric", month: "2-digit", day: "2-digit" }).formatToParts(new Date(ms));
    function part(type) { return parts.filter(function (p) { return p.type === type; })[0].value; }
    return part("year") + "-" + part("month") + "-" + part("day");
  }

  function addDays(isoDate, n) {
    var d = new Date(isoDate + "T00:00:00Z");
    d.setUTCDate(d.getUTCDate() + n);
    return d.toISOString().slice(0, 10);
  }

  function reportPath(from, to, by) {
    return "/admin/reports/sla?all_queues=true&by=" + by + "&from=" + from + "&to=" + to + "&tz=" + encodeURIComponent(historyZone);
  }

  function historyFailed(err) {
    if (err instanceof AuthError) { setHistory("waiting", "dash.history_waiting"); return; }
    if (err && err.status === 409) { setHistory("off", "dash.history_off"); return; }
    historyRetryAt = Date.now() + HISTORY_RETRY_MS;
    setHistory("error", "dash.history_failed", { status: (err && err.status) || 0 });
  }

  function maybeLoadHistory(today) {
    if (historyState === "loading" || historyState === "ready" || historyState === "off") return;
    if (historyState === "error" && Date.now() < historyRetryAt) return;
    historyZone = today.timezone;
    var last = localDate(Date.parse(today.generated_at), historyZone);
    var first = addDays(last, -(HISTORY_DAYS - 1));
    var dayInput = document.getElementById("history-day");
    dayInput.max = last;
    if (!dayInput.value) dayInput.value = addDays(last, -1);
    setHistory("loading", "dash.history_loading", { days: I18n.number(HISTORY_DAYS) });
    getJson(reportPath(first, addDays(last, 1), "day")).then(function (report) {
      renderHistoryDays(report, first, HISTORY_DAYS);
      setHistory("ready", "dash.history_ready", { first: first, last: last, zone: historyZone, formula: t("formula." + report.formula) });
      loadHistoryDay(dayInput.value);
    }).catch(historyFailed);
  }

  function dayIndex(first, iso) {
    return Math.round((Date.parse(iso.slice(0, 10) + "T00:00:00Z") - Date.parse(first + "T00:00:00Z")) / 86400000);
  }

  function byTier(rows) {
    var out = {};
    rows.forEach(function (row) { (out[row.tier] = out[row.tier] || []).push(row); });
    return TIERS.filter(function (tier) { return out[tier]; }).map(function (tier) { return { tier: tier, rows: out[tier] }; });
  }

  function levelAxis(root, left, right, W, y) {
    [0, 0.25, 0.5, 0.75, 1].forEach(function (level) {
      root.appendChild(svg("line", { x1: left, x2: W - right, y1: y(level), y2: y(level), "class": level === 0 ? "axis" : "grid" }));
      root.appendChild(svg("text", { x: left - 6, y: y(level) + 4, "text-anchor": "end" }, Math.round(level * 100) + "%"));
    });
  }

  function tierSeries(root, tier, points, cls) {
    var d = "", pen = "M";
    var group = svg("g", { "class": "series", "data-tier": tier });
    points.forEach(function (p) {
      if (p.level === null || p.level === undefined) { pen = "M"; return; }
      d += pen + p.x.toFixed(1) + " " + p.y.toFixed(1) + " ";
      pen = "L";
      var attrs = { cx: p.x, cy: p.y, r: 3.5, "class": cls + " line-" + tier, "data-tier": tier, "data-service-level": p.level };
      for (var k in p.data) if (Object.prototype.hasOwnProperty.call(p.data, k)) attrs[k] = p.data[k];
      var dot = svg("circle", attrs);
      dot.appendChild(svg("title", {}, p.title));
      if (p.onclick) dot.addEventListener("click", p.onclick);
      group.appendChild(dot);
    });
    if (d) group.insertBefore(svg("path", { d: d.trim(), "class": "sl line-" + tier }), group.firstChild);
    root.appendChild(group);
  }

  function targetLines(root, tiers, left, right, W, y) {
    tiers.forEach(function (tt) {
      var target = tt.rows[0].target;
      if (target === null || target === undefined) return;
      root.appendChild(svg("line", { x1: left, x2: W - right, y1: y(target), y2: y(target), "class": "target line-" + tt.tier, "data-tier": tt.tier, "data-target": target }));
    });
  }

  function renderHistoryDays(report, first, days) {
    var W = 1200, H = 220, left = 44, right = 20, top = 12, bottom = 26;
    var pw = W - left - right, ph = H - top - bottom, step = pw / days;
    function x(i) { return left + (i + 0.5) * step; }
    function y(level) { return top + (1 - level) * ph; }
    var box = el("div", { "class": "history-chart", "data-chart": "days", "data-first-day": first });
    var root = svg("svg", { viewBox: "0 0 " + W + " " + H, role: "img", "aria-label": t("dash.days_label", { days: I18n.number(days) }) });
    levelAxis(root, left, right, W, y);
    for (var i = 0; i < days; i += 5) {
      root.appendChild(svg("text", { x: x(i), y: H - 8, "text-anchor": "middle" }, addDays(first, i).slice(5)));
    }
    var tiers = byTier(report.rows);
    targetLines(root, tiers, left, right, W, y);
    tiers.forEach(function (tt) {
      tierSeries(root, tt.tier, tt.rows.map(function (row) {
        var day = row.start.slice(0, 10), i = dayIndex(first, row.start);
        return {
          x: x(i), y: y(row.service_level === null ? 0 : row.service_level), level: row.service_level,
          data: { "data-day": day, "data-offered": row.offered, "data-met": rawValue(row.met) },
          title: t(row.target === null ? "dash.day_dot" : "dash.day_dot_target", { tier: t("tier." + tt.tier), day: day, level: pct(row.service_level), n: I18n.number(row.offered), target: pct(row.target) }),
          onclick: function () { document.getElementById("history-day").value = day; loadHistoryDay(day); }
        };
      }), "history-dot");
    });
    box.appendChild(root);
    box.appendChild(tierLegend());
    document.getElementById("history-days").replaceChildren(box);
  }

  function tierLegend() {
    var legend = el("div", { "class": "legend-row" });
    TIERS.forEach(function (tier) {
      var item = el("span", {});
      item.appendChild(el("span", { "class": "swatch " + tier }));
      item.appendChild(document.createTextNode(t("tier." + tier)));
      legend.appendChild(item);
    });
    return legend;
  }

  function loadHistoryDay(day) {
    if (!day || !historyZone) return;
    var holder = document.getElementById("history-day-chart");
    holder.setAttribute("data-state", "loading");
    getJson(reportPath(day, addDays(day, 1), "15m")).then(function (report) {
      renderHistoryDay(report, day);
    }).catch(function (err) {
      holder.setAttribute("data-state", "error");
      holder.replaceChildren(el("p", { "class": "warn" }, t("dash.day_failed", { day: day, status: (err && err.status) || 0 })));
    });
  }

  function renderHistoryDay(report, day) {
    var W = 1200, H = 200, left = 44, right = 70, top = 12, bottom = 26;
    var pw = W - left - right, ph = H - top - bottom;
    var dayStart = Date.parse(report.start);
    var slots = Math.max(96, Math.round((Date.parse(report.end) - dayStart) / 900000));
    var slotW = pw / slots;
    function x(slot) { return left + slot * slotW; }
    function y(level) { return top + (1 - level) * ph; }
    var clock = timeFormatter(report.timezone, false);
    var offered = {}, starts = {}, maxOffered = 1;
    report.rows.forEach(function (row) {
      var slot = Math.round((Date.parse(row.start) - dayStart) / 900000);
      offered[slot] = (offered[slot] || 0) + row.offered;
      starts[slot] = row.start;
      if (offered[slot] > maxOffered) maxOffered = offered[slot];
    });
    var box = el("div", { "class": "history-chart", "data-chart": "day", "data-day": day });
    box.appendChild(el("h3", {}, t("dash.day_title", { day: day, zone: report.timezone })));
    var root = svg("svg", { viewBox: "0 0 " + W + " " + H, role: "img", "aria-label": t("dash.day_label", { day: day }) });
    levelAxis(root, left, right, W, y);
    root.appendChild(svg("text", { x: W - right + 6, y: top + 10 }, t(maxOffered === 1 ? "dash.one_call" : "dash.calls", { n: I18n.number(maxOffered) })));
    for (var hour = 0; hour * 4 < slots; hour += 3) {
      root.appendChild(svg("text", { x: x(hour * 4), y: H - 8, "text-anchor": "middle" }, clock.format(new Date(dayStart + hour * 3600000))));
    }
    var bars = svg("g", { "class": "bars" });
    Object.keys(offered).map(Number).filter(function (slot) { return offered[slot] > 0; }).sort(function (a, b) { return a - b; }).forEach(function (slot) {
      var height = (offered[slot] / maxOffered) * ph;
      var rect = svg("rect", {
        x: x(slot) + 1, y: top + ph - height, width: Math.max(1, slotW - 2), height: height, "class": "bar history-bar",
        "data-interval-start": starts[slot], "data-offered": offered[slot]
      });
      rect.appendChild(svg("title", {}, t("dash.bar_offered", { time: clock.format(new Date(Date.parse(starts[slot]))), n: I18n.number(offered[slot]) })));
      bars.appendChild(rect);
    });
    root.appendChild(bars);
    var tiers = byTier(report.rows);
    targetLines(root, tiers, left, right, W, y);
    tiers.forEach(function (tt) {
      tierSeries(root, tt.tier, tt.rows.map(function (row) {
        var slot = Math.round((Date.parse(row.start) - dayStart) / 900000);
        return {
          x: x(slot) + slotW / 2, y: y(row.service_level === null ? 0 : row.service_level), level: row.service_level,
          data: { "data-interval-start": row.start },
          title: t("dash.dot", { tier: t("tier." + tt.tier), time: clock.format(new Date(Date.parse(row.start))), level: pct(row.service_level) })
        };
      }), "history-dot-15m");
    });
    box.appendChild(root);
    box.appendChild(tierLegend());
    var holder = document.getElementById("history-day-chart");
    holder.replaceChildren(box);
    holder.setAttribute("data-state", "ready");
  }

  document.getElementById("history-day-form").addEventListener("submit", function (event) {
    event.preventDefault();
    loadHistoryDay(document.getElementById("history-day").value);
  });

  // --- the poll loop ------------------------------------------------------------------------

  var stateMessage = ["dash.loading", {}];

  function setState(state, key, vars) {
    stateMessage = [key, vars || {}];
    app.setAttribute("data-state", state);
    statusLine.textContent = t(key, vars);
  }

  var lastFormula = null;

  function showFormula() {
    document.getElementById("formula").textContent = lastFormula ? t("dash.formula", { name: lastFormula, text: t("formula." + lastFormula) }) : "";
  }

  function poll() {
    clearTimeout(timer);
    var mine = ++generation;
    Promise.all([
      getJson("/admin/sla?window=today"),
      getJson("/admin/sla?window=15m")
    ]).then(function (answers) {
      var today = answers[0], rolling = answers[1];
      renderTable(today, rolling);
      renderCallbacks(today.callbacks);
      renderCharts(today);
      lastFormula = today.formula;
      showFormula();
      polls += 1;
      app.setAttribute("data-polls", String(polls));
      app.setAttribute("data-generated-at", today.generated_at);
      maybeLoadHistory(today);
      getJson("/admin/workload").then(renderWorkload, function () {
        document.getElementById("workload").setAttribute("data-state", "error");
      });
      // The report changes once a night: read with the first figures and once a minute after.
      // It answers 404 until a run has been applied, which the card says.
      if (polls % 30 === 1) getJson(GRADING_PATH).then(renderGrading, noGrading);
      var server = timeFormatter(today.timezone, true).format(new Date(Date.parse(today.generated_at)));
      setState("live", "dash.live", { time: server, zone: today.timezone, every: I18n.number(POLL_MS / 1000) });
    }).catch(function (err) {
      if (err instanceof AuthError) {
        setState("unauthorized", err.status === 403 ? "dash.not_admin_token" : "dash.token_missing");
      } else {
        setState("error", "dash.unreachable", { status: (err && err.status) || 0 });
      }
    }).then(function () {
      if (mine === generation) timer = setTimeout(poll, POLL_MS);
    });
  }

  document.getElementById("token-form").addEventListener("submit", function (event) {
    event.preventDefault();
    var input = document.getElementById("token");
    saveToken(input.value.trim());
    input.value = "";
    poll();
  });
  document.getElementById("forget").addEventListener("click", function () {
    saveToken("");
    poll();
  });

  // Exposed for the browser test, which holds it equal to admin/sla_status.py.
  window.tierlineSlaStatus = slaStatus;

  function relabel() {
    I18n.apply(document);
    document.title = t("dash.page_title");
    app.setAttribute("data-lang", I18n.lang);
    statusLine.textContent = t(stateMessage[0], stateMessage[1]);
    document.getElementById("history-status").textContent = t(historyMessage[0], historyMessage[1]);
    showFormula();
  }

  I18n.load().then(function () {
    relabel();
    I18n.switcher(document.getElementById("lang"), function () {
      relabel();
      if (historyState === "ready") { historyState = "waiting"; } // redrawn in the new language
      poll();
    });
    loadToken();
    poll();
  }, function () {
    statusLine.textContent = "Tierline: the language catalogue could not be loaded. / 无法加载语言文件。";
  });
})();
