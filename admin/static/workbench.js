// Tierline back-office workbench (GET /workbench/): the people who call mid-tier customers back
// take the next callback, see who the customer is and why they are owed a call, and record what
// happened. Every figure and action goes through the API with the agent's bearer token (the
// backoffice token, or the IVR token): POST /v1/agents/{id}/next {only: "callbacks"} and POST
// /v1/callbacks/{id}/outcome. The agent id and token are kept in the tab (sessionStorage), as the
// dashboard keeps its token. Plain browser JavaScript, no libraries, nothing from elsewhere.
(function () {
  "use strict";

  var I18n = window.TierlineI18n;
  var AGENT_KEY = "tierline.workbench.agent";
  var TOKEN_KEY = "tierline.workbench.token";
  var QUEUES_KEY = "tierline.workbench.queues";
  var TICK_MS = 15000;
  // Alt + key (by physical key, whatever the keyboard layout) → the button it presses.
  var SHORTCUTS = { KeyN: "next", KeyC: "do-completed", KeyA: "do-no_answer", KeyR: "do-rescheduled", KeyX: "do-cancelled" };

  var $ = function (id) { return document.getElementById(id); };
  var app = $("app");
  var agent = "", token = "", queues = [];
  var current = null; // the callback this agent holds, as the API last answered it
  var lastDone = null; // what the last outcome answered, for its message after a language switch
  var stale = false; // the callback shown was taken or closed by someone else (409): Next is open again
  var busy = false;

  function storage() {
    try { return window.sessionStorage; } catch (e) { return null; }
  }

  function loadSession() {
    var store = storage();
    var match = /(?:^#|&)token=([^&]*)/.exec(window.location.hash);
    if (match) {
      if (store) store.setItem(TOKEN_KEY, decodeURIComponent(match[1]));
      window.history.replaceState(null, "", window.location.pathname + window.location.search);
    }
    agent = (store && store.getItem(AGENT_KEY)) || "";
    token = (store && store.getItem(TOKEN_KEY)) || "";
    queues = ((store && store.getItem(QUEUES_KEY)) || "").split(",").filter(Boolean);
    $("agent").value = agent;
    $("token").value = token;
    $("queues").value = queues.join(", ");
  }

  function saveSession() {
    var store = storage();
    if (!store) return;
    var pairs = [[AGENT_KEY, agent], [TOKEN_KEY, token], [QUEUES_KEY, queues.join(",")]];
    pairs.forEach(function (p) { if (p[1]) store.setItem(p[0], p[1]); else store.removeItem(p[0]); });
  }

  var statusVars = {}; // the status line's values, to show it again in another language

  function setStatus(key, vars) {
    statusVars = vars || {};
    $("status").textContent = key ? I18n.t(key, statusVars) : "";
    $("status").dataset.key = key || "";
  }

  // --- the API ----------------------------------------------------------------------------

  function post(path, body) {
    var headers = { "Content-Type": "application/json" };
    if (token) headers.Authorization = "Bearer " + token;
    return fetch(path, { method: "POST", headers: headers, body: JSON.stringify(body), cache: "no-store" })
      .then(function (resp) {
        if (resp.status === 204) return { status: 204, body: null };
        return resp.json().then(function (body) { return { status: resp.status, body: body }; },
          function () { return { status: resp.status, body: null }; });
      });
  }

  function failure(answer) {
    var error = answer.body && answer.body.error;
    return { code: error ? error.code : "", status: answer.status };
  }

  // --- drawing ------------------------------------------------------------------------------

  function fill(dl, pairs) {
    dl.textContent = "";
    pairs.forEach(function (p) {
      var div = document.createElement("div");
      var dt = document.createElement("dt");
      var dd = document.createElement("dd");
      dt.textContent = p[0];
      dd.textContent = p[1];
      div.appendChild(dt);
      div.appendChild(dd);
      dl.appendChild(div);
    });
  }

  function drawLeft() {
    if (!current) return;
    var left = (Date.parse(current.deadline) - Date.now()) / 1000;
    $("cb-left").textContent = left >= 0 ? I18n.t("wb.left", { span: I18n.duration(left) })
      : I18n.t("wb.overdue_by", { span: I18n.duration(-left) });
    $("cb-left").className = left < 0 ? "late" : (left < 7200 ? "soon" : "");
  }

  function drawCallback() {
    var cb = current;
    $("callback").hidden = !cb;
    if (!cb) return;
    var crm = (cb.record && cb.record.crm) || {};
    var why = [], rest = [];
    Object.keys(crm).sort().forEach(function (name) {
      (name.indexOf("grading.") === 0 ? why : rest).push([name.slice(name.indexOf("grading.") === 0 ? 8 : 0), crm[name]]);
    });
    $("cb-caller").textContent = cb.caller;
    $("cb-tier").textContent = I18n.t("tier." + cb.tier);
    fill($("cb-why"), why);
    $("cb-why-none").hidden = why.length > 0;
    fill($("cb-crm"), rest);
    $("cb-crm-none").hidden = rest.length > 0;
    var call = cb.overflowed_call || {};
    $("cb-queue").textContent = call.queue || cb.queue;
    $("cb-arrived").textContent = I18n.dateTime(call.arrived_at || cb.created_at);
    $("cb-waited").textContent = call.waited_s === undefined ? "–" : I18n.duration(call.waited_s);
    $("cb-reason").textContent = I18n.t("reason." + (call.reason || cb.reason));
    $("cb-deadline").textContent = I18n.dateTime(cb.deadline);
    $("cb-at-risk").hidden = !cb.at_risk;
    drawLeft();
    var body = $("cb-attempts");
    body.textContent = "";
    (cb.attempt_log || []).forEach(function (a) {
      var tr = document.createElement("tr");
      [I18n.dateTime(a.at), a.agent_id, I18n.t("outcome." + a.outcome), a.note || "",
        a.next_attempt_at ? I18n.dateTime(a.next_attempt_at) : "–"].forEach(function (text) {
        var td = document.createElement("td");
        td.textContent = text;
        tr.appendChild(td);
      });
      tr.dataset.outcome = a.outcome;
      body.appendChild(tr);
    });
    $("cb-attempts-none").hidden = (cb.attempt_log || []).length > 0;
    app.dataset.callback = cb.callback_id;
  }

  function drawDone() {
    var done = lastDone;
    $("done").hidden = !done;
    if (!done) return;
    var vars = { caller: done.caller, time: I18n.dateTime(done.next_attempt_at) };
    var key = "wb.done_" + done.status;
    if (done.status === "open") key = done.last_outcome === "rescheduled" ? "wb.done_rescheduled" : "wb.done_retry";
    $("done-text").textContent = I18n.t(key, vars);
    $("done-text").dataset.key = key;
  }

  function drawAll() {
    I18n.apply(document);
    document.title = I18n.t("wb.page_title");
    $("lang").value = I18n.lang;
    app.dataset.lang = I18n.lang;
    drawCallback();
    drawDone();
    var key = $("status").dataset.key;
    if (key) $("status").textContent = I18n.t(key, statusVars);
    var errorKey = $("outcome-error").dataset.code;
    if (errorKey !== undefined && errorKey !== "") $("outcome-error").textContent = I18n.error(errorKey);
    $("sign-out").hidden = !agent;
    $("next").disabled = !agent || (!!current && !stale);
  }

  // --- actions ------------------------------------------------------------------------------

  function takeNext() {
    if (busy || !agent || (current && !stale)) return;
    busy = true;
    setStatus("wb.asking");
    var body = { only: "callbacks" };
    if (queues.length) body.queues = queues;
    post("/v1/agents/" + encodeURIComponent(agent) + "/next", body).then(function (answer) {
      busy = false;
      if (answer.status === 204) {
        $("empty").hidden = false;
        setStatus("wb.none_due");
        app.dataset.state = "idle";
        return;
      }
      if (answer.status !== 200) return showStatusError(failure(answer));
      $("empty").hidden = true;
      lastDone = null;
      stale = false;
      current = answer.body.callback; // the note typed so far stays in its field
      $("outcome-error").textContent = "";
      $("outcome-error").dataset.code = "";
      setStatus("wb.took", { caller: current.caller });
      app.dataset.state = "holding";
      drawAll();
      $("note").focus();
    }, function () {
      busy = false;
      showStatusError({ code: "network", status: 0 });
    });
  }

  function showStatusError(fault) {
    $("status").textContent = I18n.error(fault.code, fault.status);
    $("status").dataset.key = "";
    app.dataset.state = "error";
    app.dataset.error = fault.code;
  }

  function record(outcome) {
    if (busy || !current) return;
    var noteText = $("note").value;
    var body = { outcome: outcome, agent_id: agent };
    if (noteText) body.note = noteText;
    if (outcome === "rescheduled") {
      var asked = $("call-at").value;
      if (!asked) {
        showOutcomeError("call_at_missing");
        $("call-at").focus();
        return;
      }
      body.call_at = new Date(asked).toISOString(); // the input's local time, as an instant
    }
    busy = true;
    post("/v1/callbacks/" + encodeURIComponent(current.callback_id) + "/outcome", body).then(function (answer) {
      busy = false;
      if (answer.status !== 200) {
        // The note stays as typed: nothing is lost when someone else took or closed it meanwhile.
        var fault = failure(answer);
        showOutcomeError(fault.code, fault.status);
        if (answer.status === 409) {
          app.dataset.state = "conflict";
          stale = true;
          $("next").disabled = false;
        }
        return;
      }
      lastDone = answer.body;
      current = null;
      stale = false;
      $("note").value = "";
      $("call-at").value = "";
      $("outcome-error").textContent = "";
      $("outcome-error").dataset.code = "";
      app.dataset.state = "recorded";
      app.dataset.callback = "";
      setStatus("");
      drawAll();
      $("next").focus();
    }, function () {
      busy = false;
      showOutcomeError("network", 0);
    });
  }

  function showOutcomeError(code, status) {
    $("outcome-error").textContent = I18n.error(code, status);
    $("outcome-error").dataset.code = code;
    app.dataset.error = code;
  }

  // --- wiring ---------------------------------------------------------------------------------

  function start() {
    loadSession();
    $("signin").addEventListener("submit", function (event) {
      event.preventDefault();
      if (!$("agent").checkValidity()) { $("agent").reportValidity(); return; }
      agent = $("agent").value.trim();
      token = $("token").value.trim();
      queues = $("queues").value.split(",").map(function (q) { return q.trim(); }).filter(Boolean);
      saveSession();
      setStatus("wb.signed_in", { agent: agent });
      app.dataset.state = "ready";
      drawAll();
      $("next").focus();
    });
    $("sign-out").addEventListener("click", function () {
      agent = ""; token = ""; queues = []; current = null; lastDone = null; stale = false;
      $("agent").value = ""; $("token").value = ""; $("queues").value = "";
      saveSession();
      setStatus("wb.signed_out");
      app.dataset.state = "signed-out";
      drawAll();
    });
    $("next").addEventListener("click", takeNext);
    Array.prototype.forEach.call(document.querySelectorAll("[data-outcome]"), function (button) {
      button.addEventListener("click", function () { record(button.dataset.outcome); });
    });
    document.addEventListener("keydown", function (event) {
      if (!event.altKey || event.ctrlKey || event.metaKey) return;
      var target = SHORTCUTS[event.code];
      if (!target) return;
      event.preventDefault();
      var button = $(target);
      if (!button.disabled && !button.closest("[hidden]")) button.click();
    });
    I18n.switcher($("lang"), function () { drawAll(); });
    window.setInterval(drawLeft, TICK_MS);
    app.dataset.state = agent ? "ready" : "signed-out";
    if (!agent) setStatus("wb.sign_in_first");
    drawAll();
  }

  I18n.load().then(start, function () {
    document.body.textContent = "Tierline: the language catalogue could not be loaded. / 无法加载语言文件。";
  });
})();
