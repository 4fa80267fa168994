// Grows each email preview frame to the height of the email inside it, so the phone
// preview (the tallest) shows the whole message, appeal and footer included, instead
// of cutting it off at a fixed height. Loaded as a file: the CSP allows no inline script.
(function () {
  "use strict";
  function fit(frame) {
    var doc = frame.contentDocument;
    if (!doc || !doc.documentElement) { return; }
    frame.setAttribute("height", String(doc.documentElement.scrollHeight + 2));
  }
  document.querySelectorAll(".issue-preview__iframe").forEach(function (frame) {
    frame.addEventListener("load", function () {
      fit(frame);
      // Images arriving later make the email taller.
      frame.contentWindow.addEventListener("load", function () { fit(frame); });
      frame.contentDocument.querySelectorAll("img").forEach(function (img) {
        img.addEventListener("load", function () { fit(frame); });
      });
    });
    fit(frame);
  });
})();
