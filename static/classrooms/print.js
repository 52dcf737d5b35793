// The login cards page: a print button (the Content-Security-Policy allows no inline script).
(function () {
  "use strict";
  var button = document.getElementById("print-cards");
  if (button) {
    button.addEventListener("click", function () { window.print(); });
  }
})();
