// The live stream page: the project's debugger entries (SSE), newest first, at most 200 rows.
"use strict";
(function () {
  const table = document.getElementById("stream");
  const body = table.querySelector("tbody");
  const state = document.getElementById("live-state");
  const MAX_ROWS = 200;

  function cell(row, text, className) {
    const td = document.createElement("td");
    td.textContent = text == null ? "" : String(text);
    if (className) td.className = className;
    row.appendChild(td);
    return td;
  }

  function details(entry) {
    if (entry.outcome === "delivery") {
      return entry.destination + ": " + entry.status + " (" + entry.count + " events" +
        (entry.error ? ", " + entry.error : "") + ")";
    }
    const parts = [];
    if (entry.message) parts.push(entry.message);
    if (entry.violations) parts.push("violations: " + entry.violations.map(function (v) {
      return (v.field || "") + " " + (v.rule || v.message || "");
    }).join("; "));
    if (entry.transformations) parts.push("transformed: " + entry.transformations.join(", "));
    if (entry.transformation_error) parts.push("transformation failed: " + entry.transformation_error);
    if (entry.consent) parts.push("consent: " + entry.consent);
    return parts.join(" · ");
  }

  function add(entry) {
    const e = entry.event || {};
    const row = document.createElement("tr");
    row.className = "outcome-" + entry.outcome;
    row.dataset.outcome = entry.outcome;
    cell(row, (entry.received_at || entry.at || "").slice(11, 19));
    cell(row, entry.outcome, "tag");
    cell(row, e.type || (entry.outcome === "delivery" ? "" : entry.dialect));
    const name = cell(row, e.event || "");
    const messageId = e.message_id || e.messageId;
    if (messageId && entry.outcome === "accepted") {
      name.textContent = "";
      const link = document.createElement("a");
      link.href = table.dataset.events + encodeURIComponent(messageId);
      link.textContent = e.event || e.type;
      name.appendChild(link);
    }
    cell(row, e.user_id || e.anonymous_id || e.userId || e.anonymousId || "");
    cell(row, details(entry));
    body.insertBefore(row, body.firstChild);
    while (body.rows.length > MAX_ROWS) body.deleteRow(body.rows.length - 1);
  }

  const source = new EventSource(table.dataset.url);
  source.onopen = function () { state.textContent = "connected"; state.className = "state on"; };
  source.onerror = function () { state.textContent = "reconnecting…"; state.className = "state off"; };
  source.onmessage = function (m) { add(JSON.parse(m.data)); };
  ["accepted", "rejected", "deduplicated", "dropped", "refused", "delivery"].forEach(function (name) {
    source.addEventListener(name, function (m) { add(JSON.parse(m.data)); });
  });
})();
