// Cairn's web desk: the small behaviours pages share. No inline script anywhere (the CSP forbids it);
// every form works without this file.
(function () {
  "use strict";

  function csrfToken() {
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.getAttribute("content") : "";
  }

  // htmx requests carry the CSRF token as a header (forms carry it as a hidden field).
  document.addEventListener("htmx:configRequest", function (event) {
    event.detail.headers["X-CSRFToken"] = csrfToken();
  });

  // "/" focuses the global search box, unless the user is typing somewhere.
  document.addEventListener("keydown", function (event) {
    if (event.key !== "/" || event.ctrlKey || event.metaKey || event.altKey) return;
    var target = event.target;
    var typing = target && (target.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(target.tagName));
    var box = document.getElementById("global-search");
    if (!typing && box) {
      event.preventDefault();
      box.focus();
      box.select();
    }
  });

  // Escape closes the search suggestions.
  document.addEventListener("keydown", function (event) {
    if (event.key === "Escape") {
      var list = document.getElementById("search-suggestions");
      if (list) list.innerHTML = "";
    }
  });

  // SLA clocks tick: "in 2 hours", "5 minutes ago", in the page's language.
  var lang = document.documentElement.lang || "en";
  var relative = window.Intl && Intl.RelativeTimeFormat ? new Intl.RelativeTimeFormat(lang, { numeric: "auto" }) : null;
  var units = [["day", 86400], ["hour", 3600], ["minute", 60], ["second", 1]];

  function describe(seconds) {
    for (var i = 0; i < units.length; i++) {
      if (Math.abs(seconds) >= units[i][1] || units[i][0] === "second") {
        return relative.format(Math.round(seconds / units[i][1]), units[i][0]);
      }
    }
    return "";
  }

  function tick() {
    if (!relative) return;
    var now = Date.now();
    document.querySelectorAll("time.sla-clock[data-due]").forEach(function (clock) {
      var due = Date.parse(clock.getAttribute("data-due"));
      if (isNaN(due)) return;
      var seconds = (due - now) / 1000;
      clock.textContent = describe(seconds);
      if (!clock.classList.contains("breached")) {
        clock.classList.toggle("near", seconds > 0 && seconds < 3600);
        if (seconds <= 0) {
          clock.classList.remove("ok", "near");
          clock.classList.add("breached");
        }
      }
    });
  }

  document.addEventListener("DOMContentLoaded", tick);
  document.addEventListener("htmx:afterSwap", tick);
  setInterval(tick, 1000);

  // A form button may ask for confirmation: data-confirm="Are you sure?"
  document.addEventListener("submit", function (event) {
    var form = event.target;
    var question = form.getAttribute && form.getAttribute("data-confirm");
    if (question && !window.confirm(question)) event.preventDefault();
  });
})();

// tickets: an error answer that says where it goes (HX-Retarget: the place beside a form for its
// field errors) is swapped there like a success; other error answers are left alone, as htmx does.
document.addEventListener("htmx:beforeSwap", function (event) {
  var xhr = event.detail.xhr;
  if (xhr && xhr.status >= 400 && xhr.getResponseHeader("HX-Retarget")) {
    event.detail.shouldSwap = true;
    event.detail.isError = false;
  }
});

// tickets: a form marked data-reset-on-success is emptied once htmx has posted it (a comment added).
document.addEventListener("htmx:afterRequest", function (event) {
  var form = event.detail.elt;
  var ok = event.detail.xhr && event.detail.xhr.status >= 200 && event.detail.xhr.status < 300;
  if (ok && form && form.matches && form.matches("form[data-reset-on-success]")) form.reset();
});
