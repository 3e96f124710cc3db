// pushgate console: progressive enhancement only. Every page works
// without this file; it adds copy buttons and keeps live counts current.
"use strict";
document.addEventListener("DOMContentLoaded", function () {
  document.querySelectorAll("[data-copy]").forEach(function (button) {
    button.hidden = false;
    button.addEventListener("click", function () {
      var source = document.getElementById(button.getAttribute("data-copy"));
      if (!source || !navigator.clipboard) return;
      navigator.clipboard.writeText(source.value || source.textContent).then(function () {
        var was = button.textContent;
        button.textContent = button.getAttribute("data-copied") || "✓";
        setTimeout(function () { button.textContent = was; }, 1500);
      });
    });
  });
  // <meta name="pushgate-refresh" content="seconds">: reload while
  // something is still arriving or queued (no reload while typing). The
  // reload asks with ?auto=1, which the server does not count as the
  // person's activity (the idle timeout still ends an unattended
  // session); the address bar is given back without it.
  var here = new URL(location.href);
  if (here.searchParams.get("auto") === "1") {
    here.searchParams.delete("auto");
    history.replaceState(null, "", here.href);
  }
  var refresh = document.querySelector('meta[name="pushgate-refresh"]');
  if (refresh) {
    var seconds = parseInt(refresh.getAttribute("content"), 10) || 5;
    setInterval(function () {
      var active = document.activeElement;
      if (active && /INPUT|TEXTAREA|SELECT/.test(active.tagName)) return;
      var again = new URL(location.href);
      again.searchParams.set("auto", "1");
      location.replace(again.href);
    }, seconds * 1000);
  }
  if (window.pushgateConsole) window.pushgateConsole.forEach(function (f) { f(); });
});
