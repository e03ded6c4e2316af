// Live pages: the element with data-live is replaced by what the server sends
// (server-sent events), so new events appear without reloading. Without
// JavaScript the pages work as they are; a reload shows the same.
(function () {
  "use strict";
  var target = document.querySelector("[data-live]");
  if (!target || !("EventSource" in window)) {
    return;
  }
  var status = document.getElementById("live-status");
  var eventName = target.getAttribute("data-live-event");

  function say(text) {
    if (status) {
      status.hidden = false;
      status.textContent = text;
    }
  }

  function clock() {
    return new Date().toLocaleTimeString("nl-NL");
  }

  var source = new EventSource(target.getAttribute("data-live"));
  source.addEventListener("open", function () {
    target.setAttribute("data-live-connected", "true");
    say("Live: nieuwe gebeurtenissen verschijnen vanzelf.");
  });
  source.addEventListener(eventName, function (event) {
    // Keep what the visitor is typing in a form that will be replaced.
    var active = document.activeElement;
    if (active && target.contains(active) && (active.tagName === "TEXTAREA" || active.tagName === "INPUT" || active.tagName === "SELECT")) {
      say("Er is iets veranderd. Laad de pagina opnieuw om het te zien.");
      return;
    }
    target.innerHTML = event.data;
    say("Bijgewerkt om " + clock() + ".");
  });
  source.addEventListener("logged-out", function () {
    source.close();
    say("U bent uitgelogd. Log opnieuw in om het actuele beeld te zien.");
  });
  source.addEventListener("error", function () {
    target.setAttribute("data-live-connected", "false");
    say("Verbinding verbroken; opnieuw verbinden…");
  });
})();
