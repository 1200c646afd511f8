// iea-connect web console: live status without reloading. Hand-written, no dependency.
// The page works without it (plain forms); it only follows the status through the
// server-sent events of /api/v1/status/events and updates the indicator in place.
"use strict";

(function () {
  var panel = document.getElementById("status");
  if (!panel || typeof EventSource === "undefined") {
    return;
  }
  function set(field, text) {
    var el = panel.querySelector("[data-field='" + field + "']");
    if (el) {
      el.textContent = text || "";
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
