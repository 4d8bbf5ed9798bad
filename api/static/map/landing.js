/* The landing page's "copy" buttons (no inline script: the page runs under a CSP without 'unsafe-inline').
   Without JavaScript the buttons stay hidden and the text is still selectable. */
(function () {
  "use strict";
  function select(el) {
    var r = document.createRange();
    r.selectNodeContents(el);
    var s = window.getSelection();
    s.removeAllRanges();
    s.addRange(r);
  }
  document.querySelectorAll("button[data-copy]").forEach(function (btn) {
    var el = document.getElementById(btn.getAttribute("data-copy"));
    if (!el) return;
    var label = btn.textContent;
    btn.hidden = false;
    btn.addEventListener("click", function () {
      function done() {
        btn.textContent = btn.getAttribute("data-done") || label;
        window.setTimeout(function () { btn.textContent = label; }, 1500);
      }
      function fallback() {
        select(el);
        try { if (document.execCommand("copy")) done(); } catch (e) { /* the text stays selected */ }
      }
      if (navigator.clipboard && window.isSecureContext) {
        navigator.clipboard.writeText(el.textContent).then(done, fallback);
      } else {
        fallback();
      }
    });
  });
})();
