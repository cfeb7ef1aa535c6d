// The AIlink inbox's only script (the page's Content-Security-Policy allows no other).
// Live regions ([data-live]) are re-fetched as server-rendered HTML when the gateway reports an
// approval event; countdowns ([data-expires]) tick every second; a reason being typed survives
// a refresh. Nothing here builds HTML from data: fragments come from the server, already escaped.
(function () {
  "use strict";
  var body = document.body;
  var serverNow = Date.parse(body.getAttribute("data-server-now") || "");
  var skew = isNaN(serverNow) ? 0 : serverNow - Date.now();
  var refreshing = false;
  var again = false;
  var waiting = [];

  function pad(n) { return (n < 10 ? "0" : "") + n; }

  function remaining(ms) {
    var s = Math.max(0, Math.floor(ms / 1000));
    var h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = s % 60;
    return h ? h + ":" + pad(m) + ":" + pad(r) : m + ":" + pad(r);
  }

  function tick() {
    var now = Date.now() + skew;
    var expired = false;
    document.querySelectorAll("time.countdown[data-expires]").forEach(function (el) {
      var left = Date.parse(el.getAttribute("data-expires")) - now;
      if (isNaN(left)) { return; }
      if (left <= 0) {
        if (!el.classList.contains("expired")) { expired = true; }
        el.textContent = "expired";
        el.classList.add("expired");
      } else {
        el.textContent = "expires in " + remaining(left);
        el.classList.toggle("soon", left < 60000);
      }
    });
    if (expired) { refresh(); }
  }

  function localTimes(root) {
    root.querySelectorAll("time[data-local]").forEach(function (el) {
      var t = Date.parse(el.getAttribute("data-local"));
      if (!isNaN(t)) { el.textContent = new Date(t).toLocaleString(); el.title = el.getAttribute("data-local"); }
    });
  }

  function keep(root) {
    var saved = {};
    root.querySelectorAll("textarea[data-keep]").forEach(function (el) {
      saved[el.getAttribute("data-keep")] = { value: el.value, focused: document.activeElement === el,
        start: el.selectionStart, end: el.selectionEnd };
    });
    return saved;
  }

  function restore(root, saved) {
    root.querySelectorAll("textarea[data-keep]").forEach(function (el) {
      var s = saved[el.getAttribute("data-keep")];
      if (!s) { return; }
      el.value = s.value;
      if (s.focused) { el.focus(); el.setSelectionRange(s.start, s.end); }
    });
  }

  function updateCount(root) {
    var marker = root.querySelector("[data-pending-count]");
    var badge = document.getElementById("pending-count");
    if (marker && badge) { badge.textContent = marker.getAttribute("data-pending-count"); }
  }

  function load(region) {
    return fetch(region.getAttribute("data-live"), { credentials: "same-origin", headers: { "Accept": "text/html" } })
      .then(function (response) {
        if (response.status === 401) { window.location.reload(); return null; }
        return response.ok ? response.text() : null;
      })
      .then(function (html) {
        if (html === null) { return; }
        var saved = keep(region);
        region.innerHTML = html;  // server-rendered and escaped
        restore(region, saved);
        localTimes(region);
        updateCount(region);
      });
  }

  function refresh(done) {
    if (refreshing) { again = true; if (done) { waiting.push(done); } return; }
    var regions = Array.prototype.slice.call(document.querySelectorAll("[data-live]"));
    refreshing = true;
    Promise.all(regions.map(load)).catch(function () { /* the next event retries */ }).then(function () {
      refreshing = false;
      body.setAttribute("data-refreshed", String(Date.now()));
      tick();
      if (done) { done(); }
      if (again) { again = false; var later = waiting; waiting = []; refresh(function () { later.forEach(function (f) { f(); }); }); }
    });
  }

  function listen() {
    var url = body.getAttribute("data-events");
    var state = document.getElementById("live-state");
    if (!url || !window.EventSource) { return; }
    var source = new EventSource(url);
    source.addEventListener("open", function () {
      if (state) { state.classList.add("on"); state.title = "Live updates: connected"; }
      // catch up on whatever happened between this page's rendering and the stream's start
      refresh(function () { body.setAttribute("data-live-connected", "true"); });
    });
    source.addEventListener("error", function () {
      if (state) { state.classList.remove("on"); state.title = "Live updates: reconnecting"; }
      body.removeAttribute("data-live-connected");
    });
    source.addEventListener("change", function () { refresh(); });
    window.addEventListener("pagehide", function () { source.close(); });
  }

  localTimes(document);
  tick();
  setInterval(tick, 1000);
  listen();
})();
