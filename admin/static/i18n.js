// Tierline's two languages for the dashboard and the workbench: English and Simplified Chinese.
// Every string a page shows comes from one catalogue per language (i18n.en.json,
// i18n.zh-CN.json, served beside this script; tests/http/test_i18n.py holds them to the same
// keys). The language is the one picked on the page (kept in localStorage), else the browser's
// first of its languages that is Chinese or English. A key missing from the catalogue shows as
// ⟦key⟧ and is listed in `missing`, never filled from the other language.
// Numbers, dates and times go through Intl in the page's language; times are shown in the
// browser's time zone, named beside them.
(function () {
  "use strict";

  var LANG_KEY = "tierline.lang";
  var LANGS = ["en", "zh-CN"];
  var BASE = "/admin/static/";

  function storage() {
    try { return window.localStorage; } catch (e) { return null; }
  }

  function detect() {
    var store = storage();
    var picked = store && store.getItem(LANG_KEY);
    if (picked && LANGS.indexOf(picked) >= 0) return picked;
    var wanted = navigator.languages && navigator.languages.length ? navigator.languages : [navigator.language || "en"];
    for (var i = 0; i < wanted.length; i++) {
      var tag = String(wanted[i]).toLowerCase();
      if (tag.indexOf("zh") === 0) return "zh-CN";
      if (tag.indexOf("en") === 0) return "en";
    }
    return "en";
  }

  var I18n = {
    lang: "en",
    strings: {},
    missing: [],
    zone: (function () {
      try { return Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC"; } catch (e) { return "UTC"; }
    })(),

    // Load the catalogue of `lang` (default: the detected one); resolves to I18n.
    load: function (lang) {
      lang = lang || detect();
      if (LANGS.indexOf(lang) < 0) lang = "en";
      return fetch(BASE + "i18n." + lang + ".json", { cache: "no-cache" }).then(function (resp) {
        if (!resp.ok) throw new Error("catalogue " + lang + ": HTTP " + resp.status);
        return resp.json();
      }).then(function (strings) {
        I18n.lang = lang;
        I18n.strings = strings;
        I18n.missing = [];
        document.documentElement.lang = lang;
        return I18n;
      });
    },

    pick: function (lang) {
      var store = storage();
      if (store) store.setItem(LANG_KEY, lang);
      return I18n.load(lang);
    },

    // The string of `key`, `{name}` filled from vars.
    t: function (key, vars) {
      var text = I18n.strings[key];
      if (typeof text !== "string") {
        if (I18n.missing.indexOf(key) < 0) I18n.missing.push(key);
        return "⟦" + key + "⟧";
      }
      if (!vars) return text;
      return text.replace(/\{(\w+)\}/g, function (whole, name) {
        return Object.prototype.hasOwnProperty.call(vars, name) ? String(vars[name]) : whole;
      });
    },

    has: function (key) { return typeof I18n.strings[key] === "string"; },

    // Fill every [data-i18n] (text), [data-i18n-placeholder], [data-i18n-aria-label] and
    // [data-i18n-title] under root.
    apply: function (root) {
      root = root || document;
      var each = function (attr, set) {
        var found = root.querySelectorAll("[" + attr + "]");
        for (var i = 0; i < found.length; i++) set(found[i], I18n.t(found[i].getAttribute(attr)));
      };
      each("data-i18n", function (el, text) { el.textContent = text; });
      each("data-i18n-placeholder", function (el, text) { el.setAttribute("placeholder", text); });
      each("data-i18n-aria-label", function (el, text) { el.setAttribute("aria-label", text); });
      each("data-i18n-title", function (el, text) { el.setAttribute("title", text); });
    },

    // An API error's words: the catalogue's for its code, else the catalogue's general one.
    error: function (code, status) {
      if (code && I18n.has("error." + code)) return I18n.t("error." + code);
      return I18n.t("error.other", { code: code || "", status: status || "" });
    },

    number: function (value, digits) {
      if (value === null || value === undefined || isNaN(value)) return "–";
      var options = digits === undefined ? {} : { minimumFractionDigits: digits, maximumFractionDigits: digits };
      return new Intl.NumberFormat(I18n.lang, options).format(value);
    },

    percent: function (value) {
      if (value === null || value === undefined) return "–";
      return new Intl.NumberFormat(I18n.lang, { style: "percent", minimumFractionDigits: 1, maximumFractionDigits: 1 }).format(value);
    },

    // A date and time in the browser's zone, with the zone's short name.
    dateTime: function (when) {
      if (!when) return "–";
      var date = when instanceof Date ? when : new Date(when);
      return new Intl.DateTimeFormat(I18n.lang, {
        year: "numeric", month: "short", day: "numeric", hour: "2-digit", minute: "2-digit",
        hourCycle: "h23", timeZone: I18n.zone, timeZoneName: "short",
      }).format(date);
    },

    time: function (when) {
      if (!when) return "–";
      var date = when instanceof Date ? when : new Date(when);
      return new Intl.DateTimeFormat(I18n.lang, {
        hour: "2-digit", minute: "2-digit", hourCycle: "h23", timeZone: I18n.zone,
      }).format(date);
    },

    // A span of seconds in words of the catalogue: "2 h 05 min", "45 s".
    duration: function (seconds) {
      if (seconds === null || seconds === undefined || isNaN(seconds)) return "–";
      var s = Math.max(0, Math.round(Math.abs(seconds)));
      if (s < 60) return I18n.t("unit.seconds", { s: I18n.number(s) });
      var m = Math.floor(s / 60);
      if (m < 60) return I18n.t("unit.minutes", { m: I18n.number(m) });
      var h = Math.floor(m / 60), mm = m % 60;
      return I18n.t("unit.hours_minutes", { h: I18n.number(h), m: (mm < 10 ? "0" : "") + mm });
    },

    // A <select> to switch the language; `onChange(lang)` after the new catalogue is loaded.
    switcher: function (select, onChange) {
      select.value = I18n.lang;
      select.addEventListener("change", function () {
        I18n.pick(select.value).then(function () { onChange(select.value); });
      });
    },
  };

  window.TierlineI18n = I18n;
})();
