/*
 * Small accessibility repairs of markup the site does not write itself.
 *
 * - The lightbox (GLightbox, added by the mkdocs-glightbox plugin) shows the target of
 *   the link around a figure, not the figure's own <img>, and gives its enlarged image
 *   an empty alt text unless the link carries data-alt: copy the figure's alt text there.
 * - Material's search overlay is a role="dialog" element without a name: name it.
 *
 * Runs at once (this script comes after the page content and before the lightbox is
 * set up) and again on every page Material shows (document$).
 */
(function () {
  "use strict";

  function repair(root) {
    root.querySelectorAll("a.glightbox").forEach(function (link) {
      var image = link.querySelector("img[alt]");
      if (image && !link.hasAttribute("data-alt")) {
        link.setAttribute("data-alt", image.getAttribute("alt"));
      }
    });
    root.querySelectorAll(".md-search[role=dialog]:not([aria-label])").forEach(function (dialog) {
      dialog.setAttribute("aria-label", "Search");
    });
  }

  repair(document);
  if (typeof document$ !== "undefined") {
    document$.subscribe(function (doc) { repair(doc); });
  }
})();
