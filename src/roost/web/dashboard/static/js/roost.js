/* Roost browser tracker: pageviews (single-page apps too), custom events, outbound links and
 * file downloads, through the web dialect. No cookies, no storage.
 * <script defer data-site="SLUG" data-key="WRITE_KEY" src="https://ROOST/js/roost.js"></script>
 * data-api: Roost's URL (default: where this script came from); data-outbound="true",
 * data-downloads="true": track those clicks; opt out: data-opt-out="true" on the tag, or
 * window.roostOptOut = true (checked on every send).
 * roost("event", "Signup", {plan: "pro"}) records a custom event. */
(function (w, d) {
  "use strict";
  var s = d.currentScript;
  if (!s) return;
  function attr(n) { return s.getAttribute("data-" + n); }
  var api = (attr("api") || new URL(s.src).origin).replace(/\/+$/, "");
  var site = attr("site"), key = attr("key"), last = null, first = true;
  var files = /\.(pdf|zip|gz|tgz|dmg|exe|msi|pkg|deb|rpm|apk|csv|xlsx?|docx?|pptx?|mp3|mp4|mov|avi|txt|epub|iso)$/i;

  function send(path, body) {
    try {
      if (w.roostOptOut === true || attr("opt-out") === "true") return;
      body.site_id = site;
      body.writeKey = key;
      body.url = location.href;
      if (first && /^https?:/.test(d.referrer)) body.referrer = d.referrer;
      var data = JSON.stringify(body), url = api + path;
      if (navigator.sendBeacon && navigator.sendBeacon(url, new Blob([data], { type: "text/plain" }))) return;
      fetch(url, { method: "POST", body: data, keepalive: true, credentials: "omit",
        headers: { "Content-Type": "text/plain" } }).catch(function () {});
    } catch (e) { /* never break the page */ }
  }

  function pageview() {
    if (location.href === last) return;
    last = location.href;
    send("/api/v1/events/pageview", {});
    first = false;
  }

  function event(name, props) {
    var body = { event_name: String(name) };
    if (props && typeof props === "object") body.props = props.props && typeof props.props === "object" ? props.props : props;
    send("/api/v1/events/custom", body);
  }

  ["pushState", "replaceState"].forEach(function (m) {
    var original = history[m];
    history[m] = function () {
      var result = original.apply(this, arguments);
      pageview();
      return result;
    };
  });
  w.addEventListener("popstate", pageview);
  w.addEventListener("hashchange", pageview);

  d.addEventListener("click", function (e) {
    try {
      var link = e.target && e.target.closest ? e.target.closest("a[href]") : null;
      if (!link) return;
      var u = new URL(link.href, location.href);
      if (!/^https?:$/.test(u.protocol)) return;
      if (attr("outbound") === "true" && u.host !== location.host) event("Outbound Link: Click", { url: u.href });
      else if (attr("downloads") === "true" && files.test(u.pathname)) event("File Download", { url: u.href });
    } catch (err) { /* never break the page */ }
  }, true);

  var queued = (w.roost && w.roost.q) || [];
  w.roost = function (kind, name, props) {
    if (kind === "event") event(name, props);
    else if (kind === "pageview") { last = null; pageview(); }
  };
  queued.forEach(function (call) { w.roost.apply(null, call); });
  pageview();
})(window, document);
