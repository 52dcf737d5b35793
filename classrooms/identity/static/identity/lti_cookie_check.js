// Inside a platform's frame, some browsers refuse the tutor's cookies; then signing in
// cannot last, and the tutor offers to open in a new tab instead.
(function () {
  var box = document.getElementById("cookie-check");
  if (!box) return;
  var attributes = box.dataset.secure === "1" ? "; SameSite=None; Secure; Partitioned" : "; SameSite=Lax";
  document.cookie = "tutor_cookie_check=1; path=/; max-age=60" + attributes;
  if (document.cookie.indexOf("tutor_cookie_check=1") !== -1) {
    window.location.replace(box.dataset.continue);
  } else {
    document.getElementById("cookies-blocked").hidden = false;
  }
})();
