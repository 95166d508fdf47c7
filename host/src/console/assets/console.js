// payhost console: the only script. Times become "3 min ago" (the UTC time stays in the
// tooltip) and the overview can refresh itself. Every page works without it.
(function () {
  "use strict";
  function ago(secs) {
    var d = Math.round(Date.now() / 1000 - secs);
    if (d < 0) return "in " + Math.round(-d) + " s";
    if (d < 60) return d + " s ago";
    if (d < 3600) return Math.floor(d / 60) + " min ago";
    if (d < 86400) return Math.floor(d / 3600) + " h ago";
    return null;
  }
  function relative() {
    document.querySelectorAll("time[data-unix]").forEach(function (t) {
      var secs = Number(t.getAttribute("data-unix"));
      var text = isFinite(secs) ? ago(secs) : null;
      if (text) t.textContent = text;
    });
  }
  document.addEventListener("DOMContentLoaded", function () {
    relative();
    setInterval(relative, 15000);
    var live = document.getElementById("live");
    if (!live) return;
    live.checked = localStorage.getItem("payhost.live") === "1";
    live.addEventListener("change", function () {
      localStorage.setItem("payhost.live", live.checked ? "1" : "0");
    });
    setInterval(function () { if (live.checked) location.reload(); }, 10000);
  });
})();
