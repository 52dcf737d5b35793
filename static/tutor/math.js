// Mathematics in messages: the server marks each formula with <span class="math">, its
// delimiters kept; KaTeX's auto-render turns those spans (and only those) into formulas.
// KaTeX builds its nodes through the DOM, so the strict CSP (no inline style) holds.
"use strict";
window.TutorMath = {
  delimiters: [
    { left: "$$", right: "$$", display: true },
    { left: "\\[", right: "\\]", display: true },
    { left: "\\(", right: "\\)", display: false },
    { left: "$", right: "$", display: false },
  ],
  render: function (root) {
    if (!root || typeof window.renderMathInElement !== "function") return;
    root.querySelectorAll("span.math:not([data-rendered])").forEach(function (span) {
      span.dataset.rendered = "1";
      try {
        window.renderMathInElement(span, {
          delimiters: window.TutorMath.delimiters,
          throwOnError: false,
          ignoredTags: [],
        });
      } catch (e) { /* leave the formula as text */ }
    });
  },
  // A plain-text title (a conversation named after its first question) with formulas in it.
  renderText: function (el) {
    if (!el || typeof window.renderMathInElement !== "function") return;
    try {
      window.renderMathInElement(el, { delimiters: window.TutorMath.delimiters, throwOnError: false });
    } catch (e) { /* leave it as text */ }
  },
};
document.addEventListener("DOMContentLoaded", function () {
  window.TutorMath.render(document.body);
  document.querySelectorAll("[data-math-text]").forEach(window.TutorMath.renderText);
});
