// The outbox console: refreshes the live part of the page from /live every
// few seconds (the server renders it, chart included). Nothing else: every
// view reads without this script, and every action is a plain form.
"use strict";
(function () {
  var live = document.getElementById("live");
  var state = document.getElementById("refresh-state");
  var every = Number(document.body.getAttribute("data-every")) || 5;

  // A form being filled in is not wiped by a refresh.
  function typing() {
    var active = document.activeElement;
    if (active && live.contains(active) && active.tagName === "INPUT") {
      return true;
    }
    var inputs = live.querySelectorAll("form.skip input[name=by], form.skip input[name=why]");
    for (var i = 0; i < inputs.length; i++) {
      if (inputs[i].value !== "") {
        return true;
      }
    }
    return false;
  }

  function refresh() {
    if (typing()) {
      state.textContent = "(refresh paused while a form is filled in)";
      return;
    }
    fetch("/live" + window.location.search, { credentials: "same-origin" })
      .then(function (response) {
        if (!response.ok) {
          throw new Error("the console answered " + response.status);
        }
        return response.text();
      })
      .then(function (html) {
        if (typing()) {
          return;
        }
        var open = [];
        live.querySelectorAll("details[open] summary").forEach(function (summary) {
          open.push(summary.textContent);
        });
        live.innerHTML = html;
        live.querySelectorAll("details summary").forEach(function (summary) {
          if (open.indexOf(summary.textContent) >= 0) {
            summary.parentElement.open = true;
          }
        });
        state.textContent = "(live, refreshed at " + new Date().toLocaleTimeString() + ")";
      })
      .catch(function (error) {
        state.textContent = "(refresh failed: " + error.message + ")";
      });
  }

  state.textContent = "(live)";
  window.setInterval(refresh, every * 1000);
})();
