// Refreshes the sending progress on an issue's admin page every two seconds
// until the issue is sent or cancelled, reloading the page when its status changes. Loaded as a file: the CSP allows no inline script.
(function () {
  "use strict";
  // Django's JavaScript catalog (/jsi18n/) when the page loaded it; English otherwise.
  var gettext = window.gettext || function (text) { return text; };
  var interpolate = window.interpolate || function (format, values) {
    return format.replace(/%\((\w+)\)s/g, function (_, name) { return String(values[name]); });
  };
  var panel = document.querySelector("[data-progress-url]");
  if (!panel) { return; }
  var url = panel.getAttribute("data-progress-url");
  var finished = ["sent", "cancelled"];
  var root = panel.closest(".issue-panel") || document;

  function show(name, value) {
    root.querySelectorAll('[data-field="' + name + '"]').forEach(function (el) {
      el.textContent = value;
      if (name === "pause_reason") { el.hidden = !value; }
    });
  }

  function refresh() {
    fetch(url, { credentials: "same-origin", headers: { "Accept": "application/json" } })
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (data) {
        if (!data) { return; }
        ["planned", "sent", "failed", "suppressed", "remaining", "rate_per_minute",
         "status_label", "pause_reason"].forEach(function (name) { show(name, data[name]); });
        show("eta", data.eta_seconds === null ? "–" :
          // Translators: a duration in seconds, as short as the language allows.
          interpolate(gettext("%(seconds)s s"), {seconds: data.eta_seconds}, true));
        var status = root.querySelector(".issue-status");
        if (status) { status.className = "issue-status issue-status--" + data.status; }
        var before = panel.getAttribute("data-status");
        panel.setAttribute("data-status", data.status);
        if (before !== data.status) {
          // The buttons depend on the status: show the page as it now stands.
          window.location.reload();
          return;
        }
        if (finished.indexOf(data.status) === -1) { window.setTimeout(refresh, 2000); }
      })
      .catch(function () { window.setTimeout(refresh, 5000); });
  }

  if (finished.indexOf(panel.getAttribute("data-status")) === -1) { window.setTimeout(refresh, 1000); }
}());
