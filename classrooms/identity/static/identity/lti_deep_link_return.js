// Hand the chosen activity back to the platform at once (the button is there without script).
(function () {
  var form = document.getElementById("deep-link-return");
  if (form) form.submit();
})();
