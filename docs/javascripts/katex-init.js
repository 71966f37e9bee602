/*
 * Render the math that pymdownx.arithmatex (generic mode) leaves in the page as
 * \( .. \) and \[ .. \] inside elements of class "arithmatex". KaTeX and its
 * auto-render extension are served from assets/vendor/katex (no CDN).
 * Material's document$ emits on the first load and after every instant
 * navigation, so math on every page gets rendered.
 */
(function () {
  "use strict";

  var options = {
    delimiters: [
      { left: "\\(", right: "\\)", display: false },
      { left: "\\[", right: "\\]", display: true }
    ],
    throwOnError: false
  };

  function renderMath(root) {
    root.querySelectorAll(".arithmatex").forEach(function (element) {
      renderMathInElement(element, options);
    });
  }

  if (typeof document$ !== "undefined") {
    document$.subscribe(function (doc) { renderMath(doc.body); });
  } else {
    document.addEventListener("DOMContentLoaded", function () { renderMath(document.body); });
  }
})();
