// pushgate console, share form and result: keeps "what leaves the house"
// current as series are ticked, asks for the consent note when explicit
// consent is chosen, and offers a print button on the referral sheet.
// Without it the form still works: the server computes the same summary.
"use strict";
(function () {
  function size(bytes) {
    var k = 1024;
    if (bytes >= k * k * k) return (bytes / (k * k * k)).toFixed(1) + " GB";
    if (bytes >= k * k) return (bytes / (k * k)).toFixed(1) + " MB";
    if (bytes >= k) return Math.round(bytes / k) + " kB";
    return bytes + " B";
  }
  function leaving() {
    var boxes = document.querySelectorAll('input[type=checkbox][name=series]');
    var series = 0, images = 0, bytes = 0;
    boxes.forEach(function (box) {
      if (!box.checked) return;
      series += 1;
      images += parseInt(box.getAttribute("data-instances"), 10) || 0;
      bytes += parseInt(box.getAttribute("data-bytes"), 10) || 0;
    });
    var set = function (id, text) {
      var el = document.getElementById(id);
      if (el) el.textContent = text;
    };
    set("leaving-series", String(series));
    set("leaving-images", String(images));
    var word = document.getElementById("leaving-images-word");
    if (word) word.textContent = word.getAttribute(images === 1 ? "data-one" : "data-many");
    set("leaving-bytes", size(bytes));
  }
  function consent() {
    var chosen = document.querySelector('input[name=legal_basis][value=explicit_consent]');
    var note = document.querySelector('textarea[name=consent_note]');
    if (chosen && note) note.required = chosen.checked;
  }
  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll('input[type=checkbox][name=series]').forEach(function (box) {
      box.addEventListener("change", leaving);
    });
    document.querySelectorAll('input[name=legal_basis]').forEach(function (radio) {
      radio.addEventListener("change", consent);
    });
    consent();
    document.querySelectorAll("[data-print]").forEach(function (button) {
      button.hidden = false;
      button.addEventListener("click", function () { window.print(); });
    });
  });
})();
