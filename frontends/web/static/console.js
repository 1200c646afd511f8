// iea-connect web console: live status without reloading. Hand-written, no dependency.
// The page works without it (plain forms); it only follows the status through the
// server-sent events of /api/v1/status/events and updates the indicator in place.
"use strict";

// A French text as the server writes it on a page: no-break spaces inside a time
// (« 12 h 00 »), before a percent sign or a unit, after « n° » (`views::keep_together`).
function keepTogether(text) {
  return String(text)
    .replace(/(\d) h (\d)/g, "$1\u00a0h\u00a0$2")
    .replace(/(\d) (%|ko\b|Mo\b|Go\b|ms\b)/g, "$1\u00a0$2")
    .replace(/n° (\d)/g, "n°\u00a0$1");
}

(function () {
  var panel = document.getElementById("status");
  if (!panel || typeof EventSource === "undefined") {
    return;
  }
  function set(field, text) {
    var el = panel.querySelector("[data-field='" + field + "']");
    if (el) {
      el.textContent = keepTogether(text || "");
    }
  }
  var events = new EventSource("/api/v1/status/events");
  events.addEventListener("status", function (e) {
    var s;
    try {
      s = JSON.parse(e.data);
    } catch (err) {
      return;
    }
    panel.setAttribute("data-indicator", s.indicator);
    var icon = panel.querySelector("img.indicator");
    if (icon) {
      icon.setAttribute("src", s.icon);
      icon.setAttribute("alt", s.label);
      icon.setAttribute("title", s.label);
    }
    set("label", s.label);
    set("reason", s.reason);
    set("since", s.since_fr ? "depuis le " + s.since_fr : "");
    set("version", s.software_version);
    var inAssistance = s.indicator === "assistance";
    var off = document.getElementById("assistance-off");
    var on = document.getElementById("assistance-on");
    if (off && on) {
      off.hidden = !inAssistance;
      on.hidden = inAssistance;
    }
  });
  events.addEventListener("error", function () {
    panel.setAttribute("data-live", "interrupted");
  });
  events.addEventListener("open", function () {
    panel.setAttribute("data-live", "on");
  });
})();

// « Mises à jour »: the progress bar of an update being applied, from the events of
// /api/v1/updates/events, until the update ends; then the installed version.
(function () {
  var panel = document.getElementById("update-progress");
  if (!panel || panel.getAttribute("data-state") !== "running" || typeof EventSource === "undefined") {
    return;
  }
  function set(field, text) {
    var el = panel.querySelector("[data-field='" + field + "']");
    if (el) {
      el.textContent = text === undefined || text === null ? "" : keepTogether(text);
    }
  }
  var bar = document.getElementById("update-bar");
  var events = new EventSource("/api/v1/updates/events");
  events.addEventListener("progress", function (e) {
    var s;
    try {
      s = JSON.parse(e.data);
    } catch (err) {
      return;
    }
    panel.hidden = false;
    panel.setAttribute("data-state", s.state);
    if (bar) {
      bar.value = s.percent;
      bar.textContent = s.percent + "\u00a0%";
    }
    set("percent", s.percent);
    set("phase_label", s.phase_label);
    set("message", s.message);
    if (s.state !== "running") {
      events.close();
      if (s.installed_version) {
        var v = document.getElementById("installed-version");
        if (v) {
          v.textContent = s.installed_version;
        }
      }
      var apply = document.getElementById("apply-update");
      if (apply && s.state === "done") {
        apply.disabled = true;
      }
    }
  });
})();

// « Comptes utilisateurs », « Tout vérifier »: each account's result as it comes, from
// the events of /api/v1/credentials/verify-all/events, until all are verified.
(function () {
  var panel = document.getElementById("verify-all");
  if (!panel || panel.getAttribute("data-state") !== "running" || typeof EventSource === "undefined") {
    return;
  }
  var bar = document.getElementById("verify-all-bar");
  var list = document.getElementById("verify-all-results");
  function set(field, text) {
    var el = panel.querySelector("[data-field='" + field + "']");
    if (el) {
      el.textContent = keepTogether(text);
    }
  }
  var events = new EventSource("/api/v1/credentials/verify-all/events");
  events.addEventListener("progress", function (e) {
    var s;
    try {
      s = JSON.parse(e.data);
    } catch (err) {
      return;
    }
    panel.setAttribute("data-state", s.state);
    if (bar) {
      bar.value = s.percent;
      bar.textContent = s.percent + "\u00a0%";
    }
    set("done", s.done);
    set("total", s.total);
    if (list) {
      while (list.firstChild) {
        list.removeChild(list.firstChild);
      }
      s.results.forEach(function (r) {
        var li = document.createElement("li");
        li.setAttribute("data-user", r.user);
        li.setAttribute("data-outcome", r.outcome);
        li.textContent = r.user + " — " + keepTogether(r.message);
        list.appendChild(li);
        var cell = window.CSS && CSS.escape
          ? document.querySelector("tr[data-user='" + CSS.escape(r.user) + "'] td.verification")
          : null;
        if (cell) {
          cell.textContent = keepTogether(r.message);
        }
      });
    }
    if (s.state !== "running") {
      events.close();
      var button = document.getElementById("verify-all-button");
      if (button) {
        button.disabled = false;
      }
    }
  });
})();

// « Dépôt n° N »: the deposit followed live, from the events of
// /api/v1/deposits/{id}/events (the orchestrator's WatchDeposit), until it is settled. A
// settled state that needs what only the server renders (the ARE's anomalies, the
// decisions a person makes) loads the page again; an accepted one is complete in place.
// « Régler ce dépôt » (#resolve, its forms rendered by the server) follows the state too:
// a state of data-resolvable without it loads the page again (which follows on if the
// deposit is not settled), a state not in it removes it.
(function () {
  var panel = document.getElementById("deposit");
  if (!panel || panel.getAttribute("data-settled") !== "false" || typeof EventSource === "undefined") {
    return;
  }
  function set(field, text) {
    var el = panel.querySelector("td." + field);
    if (el) {
      el.textContent = text === undefined || text === null ? "" : keepTogether(text);
    }
  }
  var id = panel.getAttribute("data-id");
  var resolvable = (panel.getAttribute("data-resolvable") || "").split(" ");
  var events = new EventSource("/api/v1/deposits/" + encodeURIComponent(id) + "/events");
  events.addEventListener("deposit", function (e) {
    var d;
    try {
      d = JSON.parse(e.data);
    } catch (err) {
      return;
    }
    panel.setAttribute("data-state", d.state);
    set("state", d.state_label);
    set("message", d.message);
    set("idflux", d.idflux);
    var row = document.getElementById("idflux-row");
    if (row) {
      row.hidden = !d.idflux;
    }
    set("account", d.account);
    set("attempts", d.attempts);
    var resolve = document.getElementById("resolve");
    var toResolve = resolvable.indexOf(d.state) >= 0;
    if (d.settled) {
      events.close();
      panel.setAttribute("data-settled", "true");
      panel.setAttribute("data-live", "done");
      if (d.state !== "accepted") {
        location.reload();
        return;
      }
    } else if (toResolve && !resolve) {
      events.close();
      location.reload();
      return;
    }
    if (!toResolve && resolve) {
      resolve.parentNode.removeChild(resolve);
    }
  });
  events.addEventListener("error", function () {
    if (panel.getAttribute("data-settled") === "false") {
      panel.setAttribute("data-live", "interrupted");
    }
  });
  events.addEventListener("open", function () {
    panel.setAttribute("data-live", "on");
  });
})();
